//! `Manager` (section 8): map set/get and list append through proxies, from a child.

use std::time::Instant;

use procession::manager::{Manager, SharedList, SharedMap};
use procession::prelude::*;

use crate::toolbox::{cpus, finish_held, held, measure, rates_of, set_affinity, Pin, LONG};
use crate::{rate_record, Cfg, R};

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
enum MgrOp {
    DictSet,
    DictGet,
    ListAppend,
}

/// Do `op` N times through the proxies, timed inside the worker; replies the seconds.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<f64, String>)]
struct MgrGo(MgrOp, u64, SharedMap<u64, u64>, SharedList<u64>);

/// The child process of the Manager figures.
#[derive(Serialize, Deserialize, Actor, Default)]
#[actor(handles(MgrGo, Pin))]
struct MgrWorker {
    #[serde(skip)]
    affinity: Option<libc::cpu_set_t>,
}

impl Handler<Pin> for MgrWorker {
    fn handle(&mut self, Pin(cpu): Pin, _cx: &mut Context<Self>) -> Result<(), String> {
        set_affinity(0, cpu, &mut self.affinity)
    }
}

impl Handler<MgrGo> for MgrWorker {
    fn handle(
        &mut self,
        MgrGo(op, n, map, list): MgrGo,
        _cx: &mut Context<Self>,
    ) -> Result<f64, String> {
        let e = |e: procession::Error| format!("{op:?}: {e}");
        // Establish this process's connection first, as Python's `len(proxy)`.
        map.len().map_err(e)?;
        list.len().map_err(e)?;
        let t0 = Instant::now();
        match op {
            MgrOp::DictSet => {
                for i in 0..n {
                    map.insert(i & 1023, i).map_err(e)?;
                }
            }
            MgrOp::DictGet => {
                for i in 0..n {
                    if map.get(&(i & 1023)).map_err(e)?.is_none() {
                        return Err(format!("key {} missing", i & 1023));
                    }
                }
            }
            MgrOp::ListAppend => {
                for i in 0..n {
                    list.push(i).map_err(e)?;
                }
            }
        }
        Ok(t0.elapsed().as_secs_f64())
    }
}

pub(crate) fn bench_manager(cfg: &Cfg) -> R<()> {
    let m = Manager::start().map_err(|e| format!("Manager::start: {e}"))?;
    let result = manager_figures(cfg, &m);
    let shut = m.shutdown().map_err(|e| format!("manager shutdown: {e}"));
    result?;
    match shut? {
        Exit::Stopped => Ok(()),
        other => Err(format!("manager server ended with {other}")),
    }
}

fn manager_figures(cfg: &Cfg, m: &Manager) -> R<()> {
    let e = |e: procession::Error| format!("manager: {e}");
    let w = held::<MgrWorker>(MgrWorker::default())?;
    let go = |op, n, map: &SharedMap<u64, u64>, list: &SharedList<u64>| -> R<f64> {
        w.ask_timeout(MgrGo(op, n, map.clone(), list.clone()), LONG)
            .map_err(|e| format!("worker ask failed: {e}"))?
    };
    let spare_list = m.list::<u64>().map_err(e)?;
    let figures: [(MgrOp, &str, &str); 3] = [
        (
            MgrOp::DictSet,
            "manager.dict_set",
            "Manager::start().dict::<u64, u64>() proxy (a fresh, empty map per rep), given \
             to an actor process that does map.insert(i & 1023, i) in a loop (1024 int keys, \
             int values; each one ask to the server); timed inside the child, connection \
             pre-established; after each rep len == min(N, 1024) and map[(N-1) & 1023] == \
             N-1 checked",
        ),
        (
            MgrOp::DictGet,
            "manager.dict_get",
            "Manager dict proxy pre-filled with 1024 int keys (one update()); an actor \
             process reads map.get(&(i & 1023)) in a loop (each one ask to the server; a \
             missing key fails the rep); timed inside the child",
        ),
        (
            MgrOp::ListAppend,
            "manager.list_append",
            "Manager::start().list::<u64>() proxy (fresh, empty per rep); an actor process \
             does list.push(i) in a loop (each one ask to the server); timed inside the \
             child; len == N and list[N-1] == N-1 checked",
        ),
    ];
    let filled = m.dict::<u64, u64>().map_err(e)?;
    filled.update((0..1024).map(|i| (i, i))).map_err(e)?;
    let pins: &[bool] = if cpus() >= 2 {
        &[false, true]
    } else {
        &[false]
    };
    let mut server_affinity = None;
    for (&pin, (op, id, desc)) in pins
        .iter()
        .flat_map(|p| figures.iter().map(move |f| (p, *f)))
    {
        // The pinned variants: the server on CPU 0, the worker on CPU 1.
        set_affinity(
            m.pid() as libc::pid_t,
            pin.then_some(0),
            &mut server_affinity,
        )?;
        w.ask(Pin(pin.then_some(1)))
            .map_err(|e| format!("pin ask failed: {e}"))??;
        let mut run = |n: u64| -> R<f64> {
            match op {
                MgrOp::DictSet => {
                    let map = m.dict::<u64, u64>().map_err(e)?;
                    let el = go(op, n, &map, &spare_list)?;
                    let len = map.len().map_err(e)? as u64;
                    let last = map.get(&((n - 1) & 1023)).map_err(e)?;
                    if len != n.min(1024) || last != Some(n - 1) {
                        return Err(format!("dict_set verification failed: len {len}"));
                    }
                    Ok(el)
                }
                MgrOp::DictGet => go(op, n, &filled, &spare_list),
                MgrOp::ListAppend => {
                    let list = m.list::<u64>().map_err(e)?;
                    let el = go(op, n, &filled, &list)?;
                    let len = list.len().map_err(e)? as u64;
                    if len != n || list.get((n - 1) as usize).map_err(e)? != Some(n - 1) {
                        return Err(format!("list_append verification failed: len {len}"));
                    }
                    Ok(el)
                }
            }
        };
        let (n, els) = measure(cfg, &mut run, 500, 1000)?;
        let (rid, note) = if pin {
            (
                format!("{id}_pinned"),
                "; diagnostic variant: the manager's server pinned to CPU 0 and the worker to \
                 CPU 1 (sched_setaffinity), so each round trip goes between two running CPUs \
                 (unpinned, the scheduler may put both on one CPU, where they take turns)",
            )
        } else {
            (id.to_string(), "")
        };
        rate_record(
            &rid,
            &format!("{desc}{note}"),
            "ops/s",
            &rates_of(&els, n as f64),
        )
        .i("n_per_rep", n)
        .list("elapsed_s", &els)
        .s("py_id", id)
        .emit();
    }
    set_affinity(m.pid() as libc::pid_t, None, &mut server_affinity)?;
    w.ask(Pin(None))
        .map_err(|e| format!("pin ask failed: {e}"))??;
    finish_held(&w)
}
