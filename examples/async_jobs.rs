//! A job API on tokio, served by a supervised pool of CPU-bound process actors, and
//! called over loopback TCP by an async actor.
//!
//! ```text
//! main (tokio, 2 worker threads)
//! ├─ TCP job API on 127.0.0.1   one task per connection: "primes N" -> ask_async -> reply
//! ├─ crunchers (supervisor, OneForOne)
//! │  ├─ cruncher-0   counts primes below N, in its own process
//! │  └─ cruncher-1
//! └─ client          an async actor (#[actor(async)]): opens connections to the API,
//!                    sends the jobs of a batch concurrently, and gathers the answers
//! ```
//!
//! The API's tasks never block a tokio thread: each job is an `ask_async` to a cruncher.
//! Between the two batches `main` kills `cruncher-0` with SIGKILL; its supervisor
//! restarts it, and since an `ActorRef` addresses the mailbox, not the pid, the API keeps
//! its references and the second batch is answered by the new process.
//!
//! Run with `cargo run --release --features tokio --example async_jobs`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use procession::prelude::*;
use procession::supervisor::{ChildSpec, ChildState, Strategy, Supervisor, SupervisorActor};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Far longer than anything here takes, even on a loaded machine.
const LONG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// The CPU-bound workers.

/// Ask: how many primes are below `n`, and which process counted them.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (u64, u32))]
struct CountPrimes(u64);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(CountPrimes))]
struct Cruncher;

fn primes_below(n: u64) -> u64 {
    (2..n)
        .filter(|&k| (2..).take_while(|d| d * d <= k).all(|d| k % d != 0))
        .count() as u64
}

impl Handler<CountPrimes> for Cruncher {
    fn handle(&mut self, CountPrimes(n): CountPrimes, cx: &mut Context<Self>) -> (u64, u32) {
        (primes_below(n), cx.pid())
    }
}

// ---------------------------------------------------------------------------------------
// The async client actor: network I/O on loopback, in its own process.

/// Ask: send every job to the API at `addr`, `connections` jobs at a time, and return
/// each answer line.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<Vec<String>, String>)]
struct Batch {
    addr: String,
    jobs: Vec<u64>,
    connections: usize,
}

#[derive(Serialize, Deserialize, Actor)]
#[actor(async, handles(Batch))]
struct Client;

/// One connection: sends its jobs one line at a time and reads each answer.
async fn one_connection(addr: String, jobs: Vec<u64>) -> Result<Vec<String>, String> {
    let conn = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut answers = Vec::new();
    for n in jobs {
        write
            .write_all(format!("primes {n}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        match lines.next_line().await.map_err(|e| e.to_string())? {
            Some(line) => answers.push(line),
            None => return Err("the API closed the connection".into()),
        }
    }
    Ok(answers)
}

impl AsyncHandler<Batch> for Client {
    async fn handle(&mut self, b: Batch, _cx: &mut Context<Self>) -> Result<Vec<String>, String> {
        // The jobs dealt out over `connections` concurrent connections.
        let k = b.connections.max(1);
        let mut shares = vec![Vec::new(); k];
        for (i, n) in b.jobs.into_iter().enumerate() {
            shares[i % k].push(n);
        }
        let tasks: Vec<_> = shares
            .into_iter()
            .map(|jobs| tokio::spawn(one_connection(b.addr.clone(), jobs)))
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.map_err(|e| e.to_string())??);
        }
        Ok(all)
    }
}

// ---------------------------------------------------------------------------------------
// The job API, in main's tokio runtime.

/// Serves one connection: each line `primes N` is asked of the next cruncher.
async fn serve(conn: TcpStream, crunchers: Arc<Vec<ActorRef<Cruncher>>>, next: Arc<AtomicUsize>) {
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match line.strip_prefix("primes ").map(str::parse::<u64>) {
            Some(Ok(n)) => {
                let c = &crunchers[next.fetch_add(1, Ordering::Relaxed) % crunchers.len()];
                match c.ask_async_timeout(CountPrimes(n), LONG).await {
                    Ok((count, pid)) => format!("primes {n} = {count} (pid {pid})"),
                    Err(e) => format!("error {n}: {e}"),
                }
            }
            _ => format!("error: cannot read {line:?}"),
        };
        if write
            .write_all(format!("{answer}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs one batch through the client and checks every answer; returns the pids that
/// answered.
async fn batch(client: &ActorRef<Client>, addr: &str, jobs: &[u64]) -> Res<BTreeSet<u32>> {
    let answers = client
        .ask_async_timeout(
            Batch {
                addr: addr.to_string(),
                jobs: jobs.to_vec(),
                connections: 4,
            },
            LONG,
        )
        .await??;
    let mut pids = BTreeSet::new();
    for line in &answers {
        // "primes N = C (pid P)"
        let parse = || -> Option<(u64, u64, u32)> {
            let rest = line.strip_prefix("primes ")?;
            let (n, rest) = rest.split_once(" = ")?;
            let (c, rest) = rest.split_once(" (pid ")?;
            Some((
                n.parse().ok()?,
                c.parse().ok()?,
                rest.strip_suffix(')')?.parse().ok()?,
            ))
        };
        let (n, count, pid) = parse().ok_or_else(|| format!("bad answer {line:?}"))?;
        if count != primes_below(n) {
            return Err(format!("wrong answer {line:?}").into());
        }
        pids.insert(pid);
    }
    if answers.len() != jobs.len() {
        return Err(format!("{} answers to {} jobs", answers.len(), jobs.len()).into());
    }
    Ok(pids)
}

/// Waits until the supervisor runs `id` again under a pid other than `old`.
async fn restarted(sup: &ActorRef<SupervisorActor>, id: &str, old: u32) -> Res<u32> {
    let deadline = Instant::now() + LONG;
    loop {
        let sup2 = sup.clone();
        let id2 = id.to_string();
        // which_child is a blocking ask: off the runtime's threads.
        let c = tokio::task::spawn_blocking(move || sup2.which_child(&id2)).await??;
        if let (ChildState::Running, Some(pid)) = (c.state, c.pid) {
            if pid != old {
                return Ok(pid);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{id} was not restarted in time").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(10))
        .child(ChildSpec::worker::<Cruncher>("cruncher-0", Cruncher))
        .child(ChildSpec::worker::<Cruncher>("cruncher-1", Cruncher))
        .spawn()?;
    let crunchers = Arc::new(vec![
        sup.child::<Cruncher>("cruncher-0")?,
        sup.child::<Cruncher>("cruncher-1")?,
    ]);
    println!(
        "crunchers: pids {} and {}",
        crunchers[0].pid(),
        crunchers[1].pid()
    );

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let api = {
        let (crunchers, next) = (crunchers.clone(), Arc::new(AtomicUsize::new(0)));
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, crunchers.clone(), next.clone()));
            }
        })
    };
    println!("job API listening on {addr}");

    let client = Client.spawn()?;
    let jobs: Vec<u64> = (0..8).map(|i| 20_000 + 5_000 * i).collect();
    let first = batch(&client, &addr, &jobs).await?;
    println!(
        "batch 1: {} jobs answered correctly by pids {first:?}",
        jobs.len()
    );

    let old = crunchers[0].pid();
    crunchers[0].kill()?;
    let new = restarted(&sup, "cruncher-0", old).await?;
    println!("killed cruncher-0 (pid {old}); its supervisor restarted it as pid {new}");

    let second = batch(&client, &addr, &jobs).await?;
    println!(
        "batch 2: {} jobs answered correctly by pids {second:?}",
        jobs.len()
    );
    if !second.contains(&new) || second.contains(&old) {
        return Err("the restarted cruncher did not take its share".into());
    }
    println!("the restarted cruncher took its share; no job was lost");

    api.abort();
    client.stop()?;
    client.join_timeout(LONG)?;
    sup.stop()?;
    sup.join_timeout(LONG)?;
    println!("done");
    Ok(())
}
