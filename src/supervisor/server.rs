//! The supervisor actor: it starts its children, watches them, restarts them by its
//! rules, and stops them in reverse order. See the [module docs](super) for the rules.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::SupervisorError;
use super::spec::{
    check_childspecs, AutoShutdown, ChildKind, ChildSpec, Restart, Shutdown, Strategy, Supervisor,
};
use crate::actor::{send_stop_as, Actor, ActorRef, BoxError, Context, Dispatch, Handler};
use crate::error::{Error, Result};
use crate::mailbox::{Mailbox, Wait, LIVENESS_SLICE, STATE_EXITED};
use crate::process::{fork, names, runtime, Down, Exit, SpawnOptions};
use crate::remote::RemoteAddr;
use crate::ByteBuf;

/// Where a child is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildState {
    /// Its process runs.
    Running,
    /// It exited and waits for a delayed (backoff) restart.
    Restarting,
    /// It is not running and will not be restarted (its spec is kept).
    Terminated,
}

/// One child, as [`which_children`](ActorRef::which_children) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildInfo {
    /// The child's id.
    pub id: String,
    /// Its actor type's stable name.
    pub actor: String,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its restart type.
    pub restart: Restart,
    /// Its pid, while it runs.
    pub pid: Option<u32>,
    /// Its address (stable across restarts), once started.
    pub mailbox: Option<u64>,
    /// How often it has been restarted.
    pub restarts: u32,
    /// Running, restarting or terminated.
    pub state: ChildState,
    /// How its last incarnation ended, if one has ended.
    pub last_exit: Option<Exit>,
    /// Its counters and usage, once it has a mailbox (in [`SupervisorActor`]'s
    /// `which_children` and `tree`).
    pub stats: Option<crate::ActorStats>,
    /// Where it runs, for a child placed on another host
    /// ([`ChildSpec::on_hosts`]) while it runs (then `pid` and `mailbox` are `None`).
    #[serde(default)]
    pub remote: Option<RemoteAddr>,
}

/// Counts of children, as OTP's `count_children` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildCounts {
    /// Child specs held.
    pub specs: usize,
    /// Children whose process runs.
    pub active: usize,
    /// Specs of kind supervisor.
    pub supervisors: usize,
    /// Specs of kind worker.
    pub workers: usize,
}

/// A snapshot of a supervision (sub)tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeNode {
    /// This node as its supervisor sees it (for the root: id `"root"`).
    pub info: ChildInfo,
    /// Its children, if it is a running supervisor.
    pub children: Vec<TreeNode>,
}

impl std::fmt::Display for TreeNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn line(
            n: &TreeNode,
            prefix: &str,
            last: bool,
            root: bool,
            f: &mut std::fmt::Formatter<'_>,
        ) -> std::fmt::Result {
            let branch = if root {
                ""
            } else if last {
                "└─ "
            } else {
                "├─ "
            };
            let i = &n.info;
            let short = i.actor.rsplit("::").next().unwrap_or(&i.actor);
            let pid = i.pid.map_or("-".to_string(), |p| p.to_string());
            writeln!(
                f,
                "{prefix}{branch}{} ({short}) pid {pid}, {:?}, restarts {}",
                i.id, i.state, i.restarts
            )?;
            let child_prefix = if root {
                String::new()
            } else {
                format!("{prefix}{}", if last { "   " } else { "│  " })
            };
            for (k, c) in n.children.iter().enumerate() {
                line(c, &child_prefix, k + 1 == n.children.len(), false, f)?;
            }
            Ok(())
        }
        line(self, "", true, true, f)
    }
}

/// Ask: the children, in start order.
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = Vec<ChildInfo>, tag = "procession::supervisor::WhichChildren")]
pub struct WhichChildren;

/// Ask: the counts of children.
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = ChildCounts, tag = "procession::supervisor::CountChildren")]
pub struct CountChildren;

/// Ask: a snapshot of the whole tree below this supervisor.
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = TreeNode, tag = "procession::supervisor::Tree")]
pub struct Tree;

/// What a started child is: its address and pid, or neither if its `create` returned
/// [`Ignore`](crate::Ignore).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// Its mailbox id, `None` if it ignored its start.
    pub mailbox: Option<u64>,
    /// Its pid, `None` if it ignored its start.
    pub pid: Option<u32>,
    /// Its address, for a child started on another host ([`ChildSpec::on_hosts`]).
    #[serde(default)]
    pub remote: Option<RemoteAddr>,
}

/// Ask: start a child — a new spec (static strategies), or the template with these
/// arguments ([`Strategy::Dynamic`]).
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = std::result::Result<Started, SupervisorError>, tag = "procession::supervisor::StartChild")]
pub enum StartChild {
    /// Add and start this child spec.
    Spec(ChildSpec),
    /// Start the template with these CBOR-encoded arguments.
    Args(ByteBuf),
}

/// Ask: terminate the child with this id (its spec is kept, except a temporary one's, or
/// any child's of a Dynamic supervisor). Its mailbox is retired: refs to it fail from
/// then on, and `RestartChild` starts it on a new mailbox.
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = std::result::Result<(), SupervisorError>, tag = "procession::supervisor::TerminateChild")]
pub struct TerminateChild(pub String);

/// Ask: terminate the child that consumes this mailbox (for a Dynamic supervisor's
/// children, as OTP's `terminate_child(Sup, Pid)`).
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = std::result::Result<(), SupervisorError>, tag = "procession::supervisor::TerminateMailbox")]
pub struct TerminateMailbox(pub u64);

/// Ask: start again the terminated child with this id.
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = std::result::Result<Started, SupervisorError>, tag = "procession::supervisor::RestartChild")]
pub struct RestartChild(pub String);

/// Ask: forget the terminated child with this id.
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = std::result::Result<(), SupervisorError>, tag = "procession::supervisor::DeleteChild")]
pub struct DeleteChild(pub String);

/// Ask: one child, by id.
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = std::result::Result<ChildInfo, SupervisorError>, tag = "procession::supervisor::WhichChild")]
pub struct WhichChild(pub String);

/// Ask: the spec of one child, by id.
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = std::result::Result<ChildSpec, SupervisorError>, tag = "procession::supervisor::GetChildSpec")]
pub struct GetChildSpec(pub String);

/// Timer or self-message: a restart is due — after a backoff delay, or again after a
/// failed start (OTP's `try_again_restart`, queued behind what the mailbox holds).
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(tag = "procession::supervisor::RestartDue")]
pub struct RestartDue {
    ids: Vec<String>,
    generation: u64,
}

struct Child {
    spec: ChildSpec,
    mailbox: Option<Arc<Mailbox>>,
    pid: Option<u32>,
    restarts: u32,
    consecutive: u32,
    started_at: Option<Instant>,
    state: ChildState,
    generation: u64,
    last_exit: Option<Exit>,
    /// Where it runs now, for a child placed on other hosts.
    remote: Option<RemoteAddr>,
    /// The host it ran on last (restarts try it first).
    last_host: Option<String>,
}

/// How long a supervisor waits for another host to start one of its children.
pub const REMOTE_START_TIMEOUT: Duration = Duration::from_secs(5);

impl Child {
    fn new(spec: ChildSpec) -> Child {
        Child {
            spec,
            mailbox: None,
            pid: None,
            restarts: 0,
            consecutive: 0,
            started_at: None,
            state: ChildState::Terminated,
            generation: 0,
            last_exit: None,
            remote: None,
            last_host: None,
        }
    }

    /// Its process runs (here, or on another host).
    fn is_running(&self) -> bool {
        self.pid.is_some() || self.remote.is_some()
    }

    fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.spec.id.clone(),
            actor: self.spec.actor.clone(),
            kind: self.spec.kind,
            restart: self.spec.restart,
            pid: self.pid,
            mailbox: self.mailbox.as_ref().map(|m| m.id()),
            restarts: self.restarts,
            state: self.state,
            last_exit: self.last_exit.clone(),
            stats: self.mailbox.as_deref().map(crate::ActorStats::of),
            remote: self.remote.clone(),
        }
    }

    fn started(&self) -> Started {
        Started {
            mailbox: self.pid.and(self.mailbox.as_ref().map(|m| m.id())),
            pid: self.pid,
            remote: self.remote.clone(),
        }
    }
}

/// A child being terminated: the stop is sent, its exit not yet waited for.
struct Stopping {
    idx: usize,
    mb: Arc<Mailbox>,
    pid: u32,
    /// When to kill it if it has not exited (`None`: wait for ever).
    kill_at: Option<Instant>,
}

/// The supervisor actor. Start one with [`Supervisor::spawn`]; talk to it through the
/// methods on `ActorRef<SupervisorActor>`.
#[derive(crate::Actor)]
#[actor(
    handles(Down, WhichChildren, CountChildren, Tree, StartChild, TerminateChild, TerminateMailbox, RestartChild, DeleteChild, WhichChild, GetChildSpec, RestartDue),
    args = Supervisor,
    name = "procession::supervisor::Supervisor"
)]
pub struct SupervisorActor {
    cfg: Supervisor,
    me: u64,
    children: Vec<Child>,
    restarts: VecDeque<Instant>,
    dynamic_seq: u64,
    generation: u64,
    /// Its id in the tree (`root` for a supervisor no other one started), in its events.
    name: String,
}

impl Actor for SupervisorActor {
    type Args = Supervisor;

    fn create(mut cfg: Supervisor, cx: &mut Context<Self>) -> std::result::Result<Self, BoxError> {
        cfg.check()
            .map_err(|e| format!("invalid supervisor spec: {e}"))?;
        let specs = std::mem::take(&mut cfg.children);
        let mut sup = SupervisorActor {
            cfg,
            me: cx.myself().id(),
            children: Vec::new(),
            restarts: VecDeque::new(),
            dynamic_seq: 0,
            generation: 0,
            name: match cx.myself().mailbox().label() {
                l if l.is_empty() => "root".to_string(),
                l => l,
            },
        };
        for spec in specs {
            let id = spec.id.clone();
            sup.children.push(Child::new(spec));
            if let Err(e) = sup.start_now(sup.children.len() - 1) {
                sup.terminate_all();
                return Err(format!("child {id:?} failed to start: {e}").into());
            }
        }
        Ok(sup)
    }

    fn stopping(&mut self, _cx: &mut Context<Self>) {
        self.terminate_all();
    }
}

impl SupervisorActor {
    fn position(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.spec.id == id)
    }

    fn find(&self, id: &str) -> std::result::Result<usize, SupervisorError> {
        self.position(id)
            .ok_or_else(|| SupervisorError::NotFound { id: id.into() })
    }

    /// The child `id`, if it is terminated (OTP's `running` / `restarting` errors
    /// otherwise): what `restart_child` and `delete_child` need.
    fn find_terminated(&self, id: &str) -> std::result::Result<usize, SupervisorError> {
        let idx = self.find(id)?;
        let id = || id.to_string();
        let running = self.children[idx].is_running();
        match (self.children[idx].state, running) {
            (ChildState::Running, _) | (_, true) => Err(SupervisorError::Running { id: id() }),
            (ChildState::Restarting, _) => Err(SupervisorError::Restarting { id: id() }),
            (ChildState::Terminated, false) => Ok(idx),
        }
    }

    fn is_dynamic(&self) -> bool {
        self.cfg.strategy == Strategy::Dynamic
    }

    /// Starts (or restarts, on the same mailbox) child `idx` now. `Ok(false)`: its
    /// `create` returned `Ignore`, so it has no process (and no mailbox).
    fn start_now(&mut self, idx: usize) -> Result<bool> {
        let me = self.me;
        let dynamic = self.is_dynamic();
        let child = &mut self.children[idx];
        if let Some(e) = &child.spec.args_error {
            return Err(Error::Runtime(format!(
                "its arguments could not be encoded: {e}"
            )));
        }
        if !child.spec.hosts.is_empty() {
            return self.start_remote(idx).map(|()| true);
        }
        let mut opts = SpawnOptions::new().limits(child.spec.limits.clone());
        opts.method = child.spec.start_method;
        if let Some(c) = child.spec.capacity {
            opts = opts.capacity(c);
        }
        opts.supervised = true;
        opts.watcher = Some(me);
        opts.label = Some(child.spec.id.clone());
        if child.mailbox.is_none() && !dynamic {
            // The mailbox belongs to this place in the tree, not to this process: a next
            // incarnation of this supervisor adopts it, with what is queued in it.
            let id = crate::mailbox::tree_id(me, &child.spec.id);
            if let Some(rt) = runtime::current() {
                crate::mailbox::record_tree_child(rt.dir(), me, id);
            }
            opts.tree_id = Some(id);
        }
        let started = match &child.mailbox {
            None => crate::process::start(&child.spec.actor, child.spec.args.clone(), &opts),
            Some(mb) => {
                mb.reset_for_restart();
                mb.add_watcher(me, false);
                crate::process::start_on(mb, &child.spec.actor, child.spec.args.clone(), &opts)
                    .map(|()| mb.clone())
            }
        };
        let mb = match started {
            Ok(mb) => mb,
            Err(Error::StartFailed {
                exit: Exit::Ignored,
                ..
            }) => {
                tracing::info!(supervisor = %self.name, child = %child.spec.id, "child ignored its start");
                self.retire(idx);
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        child.pid = Some(mb.pid());
        child.mailbox = Some(mb);
        child.state = ChildState::Running;
        child.started_at = Some(Instant::now());
        tracing::info!(supervisor = %self.name, child = %child.spec.id, pid = child.pid, "child started");
        Ok(true)
    }

    /// Starts child `idx`, placed on other hosts: on the host it ran on last, else on
    /// the first of its hosts that takes it; then monitors it there.
    fn start_remote(&mut self, idx: usize) -> Result<()> {
        let me = self.me;
        let child = &mut self.children[idx];
        let spec = child.spec.clone();
        let order: Vec<String> = child
            .last_host
            .iter()
            .chain(
                spec.hosts
                    .iter()
                    .filter(|h| child.last_host.as_ref() != Some(*h)),
            )
            .cloned()
            .collect();
        let mut failures = Vec::new();
        for host in order {
            let host = &host;
            let addr = match crate::remote::spawn_raw(
                host,
                &spec.actor,
                spec.args.clone(),
                spec.capacity,
                spec.limits.clone(),
                REMOTE_START_TIMEOUT,
            ) {
                Ok(addr) => addr,
                Err(e) => {
                    tracing::warn!(supervisor = %self.name, child = %spec.id, %host, error = %e, "child did not start on this host");
                    failures.push(format!("{host}: {e}"));
                    continue;
                }
            };
            if let Err(e) = crate::remote::monitor(me, &addr) {
                // Unwatched, it would not be supervised: it goes.
                let _ = crate::remote::terminate(&addr, Shutdown::BrutalKill);
                failures.push(format!("{host}: it could not be monitored: {e}"));
                continue;
            }
            tracing::info!(supervisor = %self.name, child = %spec.id, %host, "child started on another host");
            child.last_host = Some(host.to_string());
            child.remote = Some(addr);
            child.state = ChildState::Running;
            child.started_at = Some(Instant::now());
            return Ok(());
        }
        Err(Error::Runtime(format!(
            "no host of {:?} started it ({})",
            spec.hosts,
            failures.join("; ")
        )))
    }

    /// Terminates child `idx`, which runs on another host, by its shutdown spec, there;
    /// waits until it has exited.
    fn terminate_remote(&mut self, idx: usize, addr: RemoteAddr) {
        let child = &mut self.children[idx];
        child.state = ChildState::Terminated;
        crate::remote::demonitor(self.me, &addr);
        if let Err(e) = crate::remote::terminate(&addr, child.spec.shutdown) {
            tracing::warn!(supervisor = %self.name, child = %child.spec.id, host = %addr.host, error = %e, "child on another host could not be terminated");
        }
    }

    /// Sends child `idx` its stop by its shutdown spec (a kill for `BrutalKill`); the
    /// exit is waited for by [`SupervisorActor::finish_terminate`]. `deadline`: the kill
    /// time of a `Timeout` shutdown, shared by children stopped in parallel.
    fn begin_terminate(&mut self, idx: usize, now: Instant) -> Option<Stopping> {
        let child = &mut self.children[idx];
        if let Some(addr) = child.remote.take() {
            self.terminate_remote(idx, addr);
            return None;
        }
        let pid = child.pid.take();
        if child.state == ChildState::Restarting {
            child.state = ChildState::Terminated;
        }
        let (Some(mb), Some(pid)) = (child.mailbox.clone(), pid) else {
            return None;
        };
        child.state = ChildState::Terminated;
        if mb.state() == STATE_EXITED {
            return None;
        }
        // OTP's exit reason `shutdown`: queued, to be handled after the current message.
        let stop = |wait: Wait| send_stop_as(&mb, Some(mb.incarnation()), wait, true).is_ok();
        let kill_at = match child.spec.shutdown {
            Shutdown::BrutalKill => {
                // Through the process that started it (the zygote), never by a pid in memory.
                fork::kill_consumer(mb.id());
                None
            }
            Shutdown::Timeout(d) => {
                let at = now + d;
                if !stop(Wait::Until(at)) {
                    fork::kill_consumer(mb.id());
                }
                Some(at)
            }
            Shutdown::Infinity => {
                if !stop(Wait::Forever) {
                    fork::kill_consumer(mb.id());
                }
                None
            }
        };
        Some(Stopping {
            idx,
            mb,
            pid,
            kill_at,
        })
    }

    /// Waits until a child sent its stop has exited, killing it at its deadline.
    fn finish_terminate(&self, s: Stopping) {
        if let Some(at) = s.kill_at {
            if !wait_exit(&s.mb, Some(at.saturating_duration_since(Instant::now()))) {
                let id = &self.children[s.idx].spec.id;
                tracing::warn!(supervisor = %self.name, child = %id, pid = s.pid, "shutdown timeout expired; killing");
                fork::kill_consumer(s.mb.id());
            }
        }
        wait_exit(&s.mb, None);
    }

    /// Terminates child `idx` by its shutdown spec and waits until it has exited.
    fn terminate(&mut self, idx: usize) {
        if let Some(s) = self.begin_terminate(idx, Instant::now()) {
            self.finish_terminate(s);
        }
    }

    /// The child will not run again: its mailbox and names go, a temporary spec goes.
    fn retire(&mut self, idx: usize) {
        let child = &mut self.children[idx];
        child.state = ChildState::Terminated;
        child.pid = None;
        if let Some(addr) = child.remote.take() {
            crate::remote::demonitor(self.me, &addr);
        }
        if let Some(mb) = child.mailbox.take() {
            mb.set_final();
            mb.unlink();
            if let Some(rt) = runtime::current() {
                names::release_names_of(rt.dir(), mb.id());
                crate::mailbox::finalize_tree(rt.dir(), mb.id());
            }
        }
    }

    /// Terminates every child and retires it: in reverse start order, one after
    /// another; a Dynamic supervisor's children all at once, as OTP does, so their
    /// shutdown allowances do not add up.
    fn terminate_all(&mut self) {
        if self.is_dynamic() {
            let now = Instant::now();
            let stopping: Vec<Stopping> = (0..self.children.len())
                .rev()
                .filter_map(|idx| self.begin_terminate(idx, now))
                .collect();
            for s in stopping {
                self.finish_terminate(s);
            }
        } else {
            for idx in (0..self.children.len()).rev() {
                self.terminate(idx);
            }
        }
        for idx in (0..self.children.len()).rev() {
            self.retire(idx);
        }
    }

    /// Records a restart; `false` if it exceeds the intensity (then give up).
    fn allow_restart(&mut self) -> bool {
        let now = Instant::now();
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.cfg.period)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() as u32 >= self.cfg.intensity {
            return false;
        }
        self.restarts.push_back(now);
        true
    }

    fn give_up(&mut self, cx: &mut Context<Self>, reason: String) {
        tracing::error!(supervisor = %self.name, %reason, "supervisor shutting down");
        self.terminate_all();
        cx.shutdown(reason);
    }

    /// Marks the children `ids` as restarting and queues their restart: after `delay`,
    /// or (`None`) behind the messages already in the mailbox, so that `stop`,
    /// `which_children` and the rest are answered between two attempts.
    fn schedule_restart(
        &mut self,
        ids: Vec<String>,
        delay: Option<Duration>,
        cx: &mut Context<Self>,
    ) {
        self.generation += 1;
        for id in &ids {
            if let Some(i) = self.position(id) {
                let c = &mut self.children[i];
                c.state = ChildState::Restarting;
                c.pid = None;
                c.generation = self.generation;
            }
        }
        let due = RestartDue {
            ids,
            generation: self.generation,
        };
        let due = match delay {
            Some(_) => due,
            None => match cx.myself().try_tell(due) {
                Ok(()) => return,
                // A full mailbox: a timer due now still lets one message in between.
                Err(e) => e.into_inner(),
            },
        };
        if let Err(e) = cx.send_self_after(delay.unwrap_or_default(), due) {
            tracing::error!(supervisor = %self.name, error = %e, "a restart could not be scheduled");
        }
    }

    /// Restarts the children `ids` (a group, in start order). If one fails to start, the
    /// ones this attempt had started are terminated again and the whole group is tried
    /// once more, later, counting against the intensity (OTP's rule).
    fn restart_group(&mut self, ids: Vec<String>, cx: &mut Context<Self>) {
        let mut started = Vec::new();
        for id in &ids {
            let Some(idx) = self.position(id) else {
                continue;
            };
            self.children[idx].restarts += 1;
            match self.start_now(idx) {
                Ok(_) => started.push(idx),
                Err(e) => {
                    tracing::error!(supervisor = %self.name, child = %id, error = %e, "restart failed");
                    for &i in started.iter().rev() {
                        self.terminate(i);
                    }
                    if !self.allow_restart() {
                        let reason = format!(
                            "reached maximum restart intensity ({} in {:?}) restarting {id:?}: {e}",
                            self.cfg.intensity, self.cfg.period
                        );
                        return self.give_up(cx, reason);
                    }
                    // A host may take a while to come back: a child placed on other
                    // hosts waits its backoff delay before the next attempt.
                    let child = &mut self.children[idx];
                    let delay = match self.cfg.backoff {
                        Some(b) if !child.spec.hosts.is_empty() => {
                            child.consecutive += 1;
                            Some(b.delay(child.consecutive))
                        }
                        _ => None,
                    };
                    return self.schedule_restart(ids, delay, cx);
                }
            }
        }
    }

    /// The child at `idx` exited for good: retire it, and apply auto-shutdown.
    fn exited_for_good(&mut self, idx: usize, cx: &mut Context<Self>) {
        let significant = self.children[idx].spec.significant;
        let id = self.children[idx].spec.id.clone();
        self.retire(idx);
        // A Dynamic supervisor keeps no spec for a child gone for good (as OTP's
        // simple_one_for_one); a Temporary child's spec goes under every strategy.
        if self.children[idx].spec.restart == Restart::Temporary || self.is_dynamic() {
            self.children.remove(idx);
        }
        if !significant {
            return;
        }
        let all_gone = self
            .children
            .iter()
            .filter(|c| c.spec.significant)
            .all(|c| c.state == ChildState::Terminated);
        match self.cfg.auto_shutdown {
            AutoShutdown::AnySignificant => self.give_up(
                cx,
                format!("auto_shutdown: significant child {id:?} exited"),
            ),
            AutoShutdown::AllSignificant if all_gone => {
                self.give_up(cx, "auto_shutdown: every significant child exited".into())
            }
            _ => {}
        }
    }

    /// Terminates child `idx` at a caller's request.
    fn terminate_on_request(&mut self, idx: usize) {
        self.terminate(idx);
        self.retire(idx);
        if self.children[idx].spec.restart == Restart::Temporary || self.is_dynamic() {
            self.children.remove(idx);
        }
    }

    /// `true` if `id` names a child this Dynamic supervisor started and that has
    /// already ended (its spec is gone).
    fn dynamic_child_ended(&self, id: &str) -> bool {
        let Some(t) = &self.cfg.template else {
            return false;
        };
        id.strip_prefix(t.id.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= 1 && n <= self.dynamic_seq)
    }
}

/// Waits until the process consuming `mb` has exited (at most `timeout`); `true` if it has.
pub(crate) fn wait_exit(mb: &Mailbox, timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        fork::reap();
        if mb.state() == STATE_EXITED {
            return true;
        }
        let slice = match deadline {
            None => LIVENESS_SLICE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                left.min(LIVENESS_SLICE)
            }
        };
        mb.wait_state_change(mb.state(), slice);
    }
}

impl Handler<Down> for SupervisorActor {
    fn handle(&mut self, down: Down, cx: &mut Context<Self>) {
        // Only the Down of the incarnation we believe runs counts; the Down of a child we
        // terminated ourselves (pid already cleared) is ignored.
        let Some(idx) = self.children.iter().position(|c| {
            (c.pid == Some(down.pid) && c.mailbox.as_ref().is_some_and(|m| m.id() == down.id))
                || c.remote.as_ref().is_some_and(|r| r.mailbox == down.id)
        }) else {
            return;
        };
        let child = &mut self.children[idx];
        child.pid = None;
        child.remote = None;
        child.last_exit = Some(down.exit.clone());
        tracing::warn!(supervisor = %self.name, child = %child.spec.id, pid = down.pid, exit = %down.exit, "child exited");
        let restart = match child.spec.restart {
            Restart::Permanent => true,
            Restart::Transient => !down.exit.is_clean(),
            Restart::Temporary => false,
        };
        if !restart {
            return self.exited_for_good(idx, cx);
        }
        let id = child.spec.id.clone();
        if !self.allow_restart() {
            let reason = format!(
                "reached maximum restart intensity ({} in {:?}) after child {id:?} exited: {}",
                self.cfg.intensity, self.cfg.period, down.exit
            );
            return self.give_up(cx, reason);
        }
        let delay = self.cfg.backoff.map(|b| {
            let child = &mut self.children[idx];
            if child
                .started_at
                .is_some_and(|t| t.elapsed() >= b.reset_after)
            {
                child.consecutive = 0;
            }
            child.consecutive += 1;
            b.delay(child.consecutive)
        });
        let n = self.children.len();
        // The group, as OTP's: the exited child and (by strategy) its siblings, whatever
        // their state — one that was terminated or has exited for good comes back with
        // the group, as OTP's `start_children` starts every child it holds.
        let group: Vec<usize> = match self.cfg.strategy {
            Strategy::OneForOne | Strategy::Dynamic => vec![idx],
            Strategy::OneForAll => (0..n).collect(),
            Strategy::RestForOne => (idx..n).collect(),
        };
        // Terminate the rest of the group, last started first.
        for &i in group.iter().rev().filter(|&&i| i != idx) {
            self.terminate(i);
        }
        // Temporary siblings are not restarted: they go.
        let mut restart_ids = Vec::new();
        for &i in &group {
            if i != idx && self.children[i].spec.restart == Restart::Temporary {
                self.retire(i);
            } else {
                restart_ids.push(self.children[i].spec.id.clone());
            }
        }
        self.children.retain(|c| {
            !(c.spec.restart == Restart::Temporary
                && c.mailbox.is_none()
                && c.state == ChildState::Terminated)
        });
        match delay.filter(|d| !d.is_zero()) {
            Some(d) => self.schedule_restart(restart_ids, Some(d), cx),
            None => self.restart_group(restart_ids, cx),
        }
    }
}

impl Handler<RestartDue> for SupervisorActor {
    fn handle(&mut self, due: RestartDue, cx: &mut Context<Self>) {
        // Children terminated meanwhile (terminate_child) stay terminated; a newer
        // schedule replaces this one.
        let ids: Vec<String> = due
            .ids
            .into_iter()
            .filter(|id| {
                self.position(id).is_some_and(|i| {
                    self.children[i].state == ChildState::Restarting
                        && self.children[i].generation == due.generation
                })
            })
            .collect();
        if !ids.is_empty() {
            self.restart_group(ids, cx);
        }
    }
}

impl Handler<WhichChildren> for SupervisorActor {
    fn handle(&mut self, _: WhichChildren, _cx: &mut Context<Self>) -> Vec<ChildInfo> {
        self.children.iter().map(Child::info).collect()
    }
}

impl Handler<WhichChild> for SupervisorActor {
    fn handle(
        &mut self,
        WhichChild(id): WhichChild,
        _cx: &mut Context<Self>,
    ) -> std::result::Result<ChildInfo, SupervisorError> {
        Ok(self.children[self.find(&id)?].info())
    }
}

impl Handler<GetChildSpec> for SupervisorActor {
    fn handle(
        &mut self,
        GetChildSpec(id): GetChildSpec,
        _cx: &mut Context<Self>,
    ) -> std::result::Result<ChildSpec, SupervisorError> {
        Ok(self.children[self.find(&id)?].spec.clone())
    }
}

impl Handler<CountChildren> for SupervisorActor {
    fn handle(&mut self, _: CountChildren, _cx: &mut Context<Self>) -> ChildCounts {
        let kind = |k| self.children.iter().filter(|c| c.spec.kind == k).count();
        ChildCounts {
            // A Dynamic supervisor holds one spec, its template, as OTP counts it.
            specs: if self.is_dynamic() {
                usize::from(self.cfg.template.is_some())
            } else {
                self.children.len()
            },
            active: self.children.iter().filter(|c| c.is_running()).count(),
            supervisors: kind(ChildKind::Supervisor),
            workers: kind(ChildKind::Worker),
        }
    }
}

impl Handler<Tree> for SupervisorActor {
    fn handle(&mut self, _: Tree, cx: &mut Context<Self>) -> TreeNode {
        let children = self
            .children
            .iter()
            .map(|c| {
                let sup = match (&c.mailbox, &c.remote, c.spec.kind, c.pid) {
                    (Some(mb), _, ChildKind::Supervisor, Some(_)) => {
                        Some(ActorRef::<SupervisorActor>::from_mailbox(mb.clone()))
                    }
                    (_, Some(addr), ChildKind::Supervisor, _) => {
                        crate::remote::ref_to::<SupervisorActor>(addr.clone()).ok()
                    }
                    _ => None,
                };
                let below = sup
                    .and_then(|s| s.ask_timeout(Tree, Duration::from_secs(5)).ok())
                    .map(|t| t.children)
                    .unwrap_or_default();
                TreeNode {
                    info: c.info(),
                    children: below,
                }
            })
            .collect();
        TreeNode {
            info: ChildInfo {
                id: "root".into(),
                actor: <Self as Dispatch>::NAME.into(),
                kind: ChildKind::Supervisor,
                restart: Restart::Permanent,
                pid: Some(cx.pid()),
                mailbox: Some(self.me),
                restarts: 0,
                state: ChildState::Running,
                last_exit: None,
                stats: None,
                remote: None,
            },
            children,
        }
    }
}

impl Handler<StartChild> for SupervisorActor {
    fn handle(
        &mut self,
        req: StartChild,
        _cx: &mut Context<Self>,
    ) -> std::result::Result<Started, SupervisorError> {
        let spec = match (req, self.cfg.strategy, &self.cfg.template) {
            (StartChild::Args(args), Strategy::Dynamic, Some(t)) => {
                self.dynamic_seq += 1;
                let mut spec = t.clone();
                spec.id = format!("{}-{}", t.id, self.dynamic_seq);
                spec.args = args.into_vec();
                spec
            }
            (StartChild::Spec(spec), s, _) if s != Strategy::Dynamic => {
                if let Some(i) = self.position(&spec.id) {
                    let c = &self.children[i];
                    return Err(match (c.pid, c.is_running()) {
                        (Some(pid), _) => SupervisorError::AlreadyStarted { id: spec.id, pid },
                        (None, true) => SupervisorError::AlreadyStarted {
                            id: spec.id,
                            pid: 0,
                        },
                        (None, false) => SupervisorError::AlreadyPresent { id: spec.id },
                    });
                }
                check_childspecs(std::slice::from_ref(&spec), self.cfg.auto_shutdown)
                    .map_err(SupervisorError::Invalid)?;
                spec
            }
            (StartChild::Args(_), s, _) => {
                return Err(SupervisorError::WrongStrategy {
                    op: "starting a child from arguments (start_dynamic)".into(),
                    strategy: s,
                })
            }
            (StartChild::Spec(_), s, _) => {
                return Err(SupervisorError::WrongStrategy {
                    op: "starting a child from a spec (start_child); use start_dynamic".into(),
                    strategy: s,
                })
            }
        };
        let id = spec.id.clone();
        self.children.push(Child::new(spec));
        let idx = self.children.len() - 1;
        match self.start_now(idx) {
            Ok(true) => Ok(self.children[idx].started()),
            Ok(false) => {
                // OTP: an ignored static child is kept with no process; an ignored
                // dynamic one is not kept.
                if self.is_dynamic() {
                    self.children.pop();
                }
                Ok(Started {
                    mailbox: None,
                    pid: None,
                    remote: None,
                })
            }
            Err(e) => {
                self.retire(idx);
                self.children.pop();
                Err(SupervisorError::StartFailed {
                    id,
                    reason: e.to_string(),
                })
            }
        }
    }
}

impl Handler<TerminateChild> for SupervisorActor {
    fn handle(
        &mut self,
        TerminateChild(id): TerminateChild,
        _cx: &mut Context<Self>,
    ) -> std::result::Result<(), SupervisorError> {
        match self.position(&id) {
            Some(idx) => {
                self.terminate_on_request(idx);
                Ok(())
            }
            // OTP: terminating a dynamic child that has already ended is `ok`.
            None if self.is_dynamic() && self.dynamic_child_ended(&id) => Ok(()),
            None => Err(SupervisorError::NotFound { id }),
        }
    }
}

impl Handler<TerminateMailbox> for SupervisorActor {
    fn handle(
        &mut self,
        TerminateMailbox(mailbox): TerminateMailbox,
        _cx: &mut Context<Self>,
    ) -> std::result::Result<(), SupervisorError> {
        let idx = self.children.iter().position(|c| {
            c.mailbox.as_ref().is_some_and(|m| m.id() == mailbox)
                || c.remote.as_ref().is_some_and(|r| r.mailbox == mailbox)
        });
        match idx {
            Some(idx) => {
                self.terminate_on_request(idx);
                Ok(())
            }
            None => {
                // OTP: a child that is no longer alive is `ok`; a live actor that is not
                // ours is `not_found`.
                let alive = runtime::current()
                    .and_then(|rt| Mailbox::open(rt.dir(), mailbox).ok())
                    .is_some_and(|mb| mb.state() != STATE_EXITED && !mb.is_gone());
                if alive {
                    Err(SupervisorError::NotFound {
                        id: format!("{mailbox:016x}"),
                    })
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl Handler<RestartChild> for SupervisorActor {
    fn handle(
        &mut self,
        RestartChild(id): RestartChild,
        _cx: &mut Context<Self>,
    ) -> std::result::Result<Started, SupervisorError> {
        if self.is_dynamic() {
            return Err(SupervisorError::WrongStrategy {
                op: "restart_child".into(),
                strategy: Strategy::Dynamic,
            });
        }
        let idx = self.find_terminated(&id)?;
        match self.start_now(idx) {
            Ok(_) => Ok(self.children[idx].started()),
            Err(e) => Err(SupervisorError::StartFailed {
                id,
                reason: e.to_string(),
            }),
        }
    }
}

impl Handler<DeleteChild> for SupervisorActor {
    fn handle(
        &mut self,
        DeleteChild(id): DeleteChild,
        _cx: &mut Context<Self>,
    ) -> std::result::Result<(), SupervisorError> {
        if self.is_dynamic() {
            return Err(SupervisorError::WrongStrategy {
                op: "delete_child".into(),
                strategy: Strategy::Dynamic,
            });
        }
        let idx = self.find_terminated(&id)?;
        self.children.remove(idx);
        Ok(())
    }
}

impl ActorRef<SupervisorActor> {
    /// The children, in start order (OTP's `which_children`).
    ///
    /// # Errors
    /// As any ask of the supervisor ([`ActorRef::ask`]): [`Error::ActorDied`] if it is
    /// gone, [`Error::Timeout`] if it does not answer within 5 s.
    pub fn which_children(&self) -> Result<Vec<ChildInfo>> {
        self.ask(WhichChildren)
    }

    /// One child, by id (OTP 27's `which_child`); [`SupervisorError::NotFound`] if there
    /// is none.
    ///
    /// # Errors
    /// [`Error::Supervisor`] with [`SupervisorError::NotFound`] for an unknown id;
    /// otherwise as [`which_children`](Self::which_children).
    pub fn which_child(&self, id: &str) -> Result<ChildInfo> {
        Ok(self.ask(WhichChild(id.to_string()))??)
    }

    /// The spec of one child, by id (OTP's `get_childspec`). A Dynamic supervisor's child
    /// has the template's spec with its own id and arguments.
    ///
    /// # Errors
    /// As [`which_child`](Self::which_child).
    pub fn get_childspec(&self, id: &str) -> Result<ChildSpec> {
        Ok(self.ask(GetChildSpec(id.to_string()))??)
    }

    /// Counts of children (OTP's `count_children`; a Dynamic supervisor counts one spec,
    /// its template).
    ///
    /// # Errors
    /// As [`which_children`](Self::which_children).
    pub fn count_children(&self) -> Result<ChildCounts> {
        self.ask(CountChildren)
    }

    /// A snapshot of the whole tree below this supervisor; `Display` prints it as a tree.
    ///
    /// # Errors
    /// As [`which_children`](Self::which_children).
    pub fn tree(&self) -> Result<TreeNode> {
        self.ask(Tree)
    }

    /// A reference to the child with this id, if it is running and is an `A`.
    ///
    /// # Errors
    /// [`Error::Supervisor`] with [`SupervisorError::NotFound`] for an unknown id;
    /// [`Error::BadRef`] if the child is not an actor of type `A` or has not started;
    /// otherwise as [`which_children`](Self::which_children).
    pub fn child<A: Dispatch>(&self, id: &str) -> Result<ActorRef<A>> {
        let info = self.which_child(id)?;
        if info.actor != A::NAME {
            return Err(Error::BadRef(format!(
                "child {id:?} is a {}, not a {}",
                info.actor,
                A::NAME
            )));
        }
        if let Some(addr) = info.remote {
            return crate::remote::ref_to(addr);
        }
        let mailbox = info
            .mailbox
            .ok_or_else(|| Error::BadRef(format!("child {id:?} has not started")))?;
        let rt = runtime::get()?;
        let mb = Mailbox::open(rt.dir(), mailbox)
            .map_err(|e| Error::BadRef(format!("child {id:?}: {e}")))?;
        Ok(ActorRef::from_mailbox(mb))
    }

    /// Adds and starts a child (static strategies; OTP's `start_child`). Returns its pid,
    /// or `None` if its `create` returned [`Ignore`](crate::Ignore) (its spec is kept).
    /// Errors: [`SupervisorError::AlreadyStarted`] / [`SupervisorError::AlreadyPresent`]
    /// for a taken id, [`SupervisorError::Invalid`] for a bad spec,
    /// [`SupervisorError::StartFailed`] (no spec is kept).
    ///
    /// # Errors
    /// [`Error::Supervisor`] with the reason OTP's `start_child` gives (the id is
    /// taken, the spec is invalid, the child failed to start); otherwise as
    /// [`which_children`](Self::which_children).
    pub fn start_child(&self, spec: ChildSpec) -> Result<Option<u32>> {
        Ok(self.ask(StartChild::Spec(spec))??.pid)
    }

    /// Starts a child of a [`Strategy::Dynamic`] supervisor from its template, with these
    /// arguments; `A` must be the template's actor type. A child whose `create` returned
    /// [`Ignore`](crate::Ignore) is not kept, and this returns
    /// [`SupervisorError::Ignored`].
    ///
    /// # Errors
    /// As [`start_child`](Self::start_child), and [`Error::Supervisor`] if the
    /// supervisor has no template (it is not a dynamic supervisor).
    pub fn start_dynamic<A: Dispatch>(&self, args: A::Args) -> Result<ActorRef<A>> {
        let mut bytes = Vec::new();
        crate::wire::encode_body(&args, &mut bytes)?;
        let started = self.ask(StartChild::Args(ByteBuf::from(bytes)))??;
        if let Some(addr) = started.remote {
            return crate::remote::ref_to(addr);
        }
        let id = started.mailbox.ok_or(SupervisorError::Ignored)?;
        let rt = runtime::get()?;
        let mb = Mailbox::open(rt.dir(), id).map_err(|e| Error::BadRef(e.to_string()))?;
        if mb.actor_name() != A::NAME {
            return Err(Error::BadRef(format!(
                "the template starts {}, not {}",
                mb.actor_name(),
                A::NAME
            )));
        }
        Ok(ActorRef::from_mailbox(mb))
    }

    /// Terminates a child by its shutdown spec (OTP's `terminate_child`): it exits with
    /// [`Exit::Shutdown("shutdown")`](Exit::Shutdown). The spec is kept (except a
    /// Temporary child's, or any child's of a Dynamic supervisor). A Dynamic child that
    /// has already ended is `Ok`, as in OTP.
    ///
    /// # Errors
    /// [`Error::Supervisor`] with [`SupervisorError::NotFound`] for an unknown id;
    /// otherwise as [`which_children`](Self::which_children).
    pub fn terminate_child(&self, id: &str) -> Result<()> {
        Ok(self.ask(TerminateChild(id.to_string()))??)
    }

    /// Terminates the child that `child` refers to (OTP's `terminate_child(Sup, Pid)`,
    /// the way to end a Dynamic supervisor's child). `Ok` if it has already ended;
    /// [`SupervisorError::NotFound`] if it is alive but not this supervisor's child.
    ///
    /// # Errors
    /// [`Error::Supervisor`] if `child` is not a child of this supervisor; otherwise as
    /// [`which_children`](Self::which_children).
    pub fn terminate_ref<A: Dispatch>(&self, child: &ActorRef<A>) -> Result<()> {
        Ok(self.ask(TerminateMailbox(child.id()))??)
    }

    /// Starts a terminated child again (OTP's `restart_child`); returns its pid, `None`
    /// if it ignored its start. [`SupervisorError::Running`] or
    /// [`SupervisorError::Restarting`] if it is not terminated.
    ///
    /// # Errors
    /// [`Error::Supervisor`] for an unknown id, a child that runs, or a failed start;
    /// otherwise as [`which_children`](Self::which_children).
    pub fn restart_child(&self, id: &str) -> Result<Option<u32>> {
        Ok(self.ask(RestartChild(id.to_string()))??.pid)
    }

    /// Forgets a terminated child (OTP's `delete_child`).
    ///
    /// # Errors
    /// [`Error::Supervisor`] for an unknown id or a child that runs; otherwise as
    /// [`which_children`](Self::which_children).
    pub fn delete_child(&self, id: &str) -> Result<()> {
        Ok(self.ask(DeleteChild(id.to_string()))??)
    }
}
