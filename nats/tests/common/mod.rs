//! The cluster the tests of a binary share: one real `nats-server`, this test process as
//! host `a` (its gateway under a supervisor), and other hosts as child processes of this
//! one: the same test binary, run as `host_main` (separate root processes, with their own
//! runtime directories and gateways). Tests of a binary run one at a time, since they
//! kill and restart parts of the cluster.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use procession::prelude::*;
use procession::supervisor::{Strategy, Supervisor, SupervisorActor};
use procession_nats::server::NatsServer;
use procession_nats::GatewayConfig;

pub const T: Duration = Duration::from_secs(10);

// ---- actors both hosts run ----

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = u64)]
pub struct Add(pub u64);

#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Inc;

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = u64)]
pub struct Get;

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = String)]
pub struct WhoAmI;

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = u64)]
pub struct Sleep(pub u64);

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = u32)]
pub struct Crash;

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = ByteBuf)]
pub struct Blob(pub usize);

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = u64)]
pub struct Echo(pub ByteBuf);

/// Kills this host's gateway (its supervisor restarts it); whether the kill was sent.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = bool)]
pub struct KillGateway;

/// A counter: tells add one, asks add n and return the total.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Add, Inc, Get, WhoAmI, Sleep, Crash, Blob, Echo, KillGateway))]
pub struct Counter {
    pub n: u64,
}

impl Handler<Add> for Counter {
    fn handle(&mut self, Add(k): Add, _cx: &mut Context<Self>) -> u64 {
        self.n += k;
        self.n
    }
}
impl Handler<Inc> for Counter {
    fn handle(&mut self, _: Inc, _cx: &mut Context<Self>) {
        self.n += 1;
    }
}
impl Handler<Get> for Counter {
    fn handle(&mut self, _: Get, _cx: &mut Context<Self>) -> u64 {
        self.n
    }
}
impl Handler<WhoAmI> for Counter {
    fn handle(&mut self, _: WhoAmI, _cx: &mut Context<Self>) -> String {
        procession::remote::this_host().map_or_else(String::new, |h| h.host.clone())
    }
}
impl Handler<Sleep> for Counter {
    fn handle(&mut self, Sleep(ms): Sleep, _cx: &mut Context<Self>) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }
}
impl Handler<Crash> for Counter {
    fn handle(&mut self, _: Crash, _cx: &mut Context<Self>) -> u32 {
        std::process::abort()
    }
}
impl Handler<Echo> for Counter {
    fn handle(&mut self, Echo(b): Echo, _cx: &mut Context<Self>) -> u64 {
        b.len() as u64
    }
}
impl Handler<KillGateway> for Counter {
    fn handle(&mut self, _: KillGateway, _cx: &mut Context<Self>) -> bool {
        procession_nats::gateway().is_some_and(|g| g.kill().is_ok())
    }
}
impl Handler<Blob> for Counter {
    fn handle(&mut self, Blob(n): Blob, _cx: &mut Context<Self>) -> ByteBuf {
        ByteBuf::from(vec![7u8; n])
    }
}

/// Asks the counter it is given (wherever it runs) and returns the answer: a ref that
/// crossed hosts inside a message.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = Result<u64, String>)]
pub struct AskThrough(pub ActorRef<Counter>, pub u64);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(AskThrough))]
pub struct Relay;

impl Handler<AskThrough> for Relay {
    fn handle(
        &mut self,
        AskThrough(c, k): AskThrough,
        _cx: &mut Context<Self>,
    ) -> Result<u64, String> {
        c.ask_timeout(Add(k), T).map_err(|e| e.to_string())
    }
}

// ---- the shared cluster ----

pub struct Cluster {
    pub server: Mutex<NatsServer>,
    pub url: String,
    pub cluster: String,
    pub sup: ActorRef<SupervisorActor>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

/// The gateway config of host `host` in this binary's cluster.
pub fn config(url: &str, cluster: &str, host: &str) -> GatewayConfig {
    GatewayConfig::new(url, cluster, host)
}

/// The cluster, and the right to use it alone for one test.
pub fn cluster() -> (&'static Cluster, MutexGuard<'static, ()>) {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = CLUSTER.get_or_init(|| {
        let server = NatsServer::start().expect("a nats-server for the tests");
        let url = server.url();
        let cluster = format!("t{}", std::process::id());
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(20, Duration::from_secs(10))
            .child(procession_nats::gateway_child(config(&url, &cluster, "a")))
            .spawn_with(procession::SpawnOptions::default().daemon(true))
            .expect("host a's supervisor and gateway");
        procession_nats::wait_connected(T).expect("host a's gateway connects");
        Cluster {
            server: Mutex::new(server),
            url,
            cluster,
            sup,
        }
    });
    // A test that failed may have left the gateway down: wait for it.
    procession_nats::wait_connected(T).expect("host a's gateway is connected");
    (c, guard)
}

/// Another host: this test binary run as `host_main` with a host name. It starts a
/// gateway, a `Counter` registered as "counter" and a `Relay` as "relay", prints READY,
/// and ends when its stdin closes.
pub struct Host {
    pub name: String,
    child: Option<Child>,
}

impl Host {
    pub fn start(c: &Cluster, name: &str) -> Host {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "host_main",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PROCESSION_NATS_TEST_HOST", name)
            .env("PROCESSION_NATS_TEST_URL", &c.url)
            .env("PROCESSION_NATS_TEST_CLUSTER", &c.cluster)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start a host");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("HOST READY") {
                    let _ = tx.send(());
                }
            }
        });
        let host = Host {
            name: name.to_string(),
            child: Some(child),
        };
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the host did not get ready in 30 s");
        host
    }

    /// The root process's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILLs the host's root process (its actors follow it: none outlives its root).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            drop(c.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The body of `host_main`: runs a host until stdin closes. Does nothing unless this
/// process was started by [`Host::start`].
pub fn host_main() {
    let Ok(name) = std::env::var("PROCESSION_NATS_TEST_HOST") else {
        return;
    };
    let url = std::env::var("PROCESSION_NATS_TEST_URL").unwrap();
    let cluster = std::env::var("PROCESSION_NATS_TEST_CLUSTER").unwrap();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(procession_nats::gateway_child(config(
            &url, &cluster, &name,
        )))
        // A daemon: a host that panics ends, rather than wait for its supervisor.
        .spawn_with(procession::SpawnOptions::default().daemon(true))
        .expect("the host's gateway");
    procession_nats::wait_connected(T).expect("the host's gateway connects");
    let counter = Counter { n: 0 }.spawn().unwrap();
    procession::register("counter", &counter).unwrap();
    let relay = Relay.spawn().unwrap();
    procession::register("relay", &relay).unwrap();
    procession_nats::register_global(&format!("{name}-counter"), &counter).unwrap();
    println!("HOST READY {name}");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
        line.clear();
    }
    for a in [counter.stop(), relay.stop()] {
        a.unwrap();
    }
    counter.join().unwrap();
    relay.join().unwrap();
    sup.stop().unwrap();
    sup.join().unwrap();
}

/// Looks up `name` on `host`, as a ref of type `A`.
pub fn find<A: procession::ActorType>(host: &str, name: &str) -> ActorRef<A> {
    procession_nats::whereis_on::<A>(host, name, T)
        .expect("whereis_on")
        .expect("the name is registered there")
}

// ---- a watcher, for remote monitors ----

/// Monitor this counter (wherever it runs).
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = ())]
pub struct Watch(pub ActorRef<Counter>);

/// Stop monitoring it; whether a monitor was removed.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = bool)]
pub struct Unwatch(pub ActorRef<Counter>);

/// The `Down`s received so far.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = Vec<procession::Down>)]
pub struct Downs;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Watch, Unwatch, Downs, procession::Down))]
pub struct Watcher {
    pub downs: Vec<procession::Down>,
}

impl Handler<Watch> for Watcher {
    fn handle(&mut self, Watch(c): Watch, cx: &mut Context<Self>) {
        cx.monitor(&c).unwrap();
    }
}
impl Handler<Unwatch> for Watcher {
    fn handle(&mut self, Unwatch(c): Unwatch, cx: &mut Context<Self>) -> bool {
        cx.demonitor(&c)
    }
}
impl Handler<Downs> for Watcher {
    fn handle(&mut self, _: Downs, _cx: &mut Context<Self>) -> Vec<procession::Down> {
        self.downs.clone()
    }
}
impl Handler<procession::Down> for Watcher {
    fn handle(&mut self, d: procession::Down, _cx: &mut Context<Self>) {
        self.downs.push(d);
    }
}

/// Calls `f` every 10 ms until it gives something, for at most `timeout`.
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits up to `timeout` for `w` to have received a `Down` of `id`, and returns it.
pub fn wait_down(w: &ActorRef<Watcher>, id: u64, timeout: Duration) -> Option<procession::Down> {
    poll_until(timeout, || {
        w.ask(Downs).unwrap().into_iter().find(|d| d.id == id)
    })
}

// ---- a linker, for links across hosts ----

/// Link with this counter (wherever it runs).
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = ())]
pub struct LinkTo(pub ActorRef<Counter>);

/// Trap exits, or not.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = ())]
pub struct Trap(pub bool);

/// The exit signals received so far (when trapping).
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(reply = Vec<procession::Exited>)]
pub struct ExitsSoFar;

/// Abort this process.
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Die;

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(LinkTo, Trap, ExitsSoFar, Die, procession::Exited))]
pub struct Linker {
    pub exits: Vec<procession::Exited>,
}

impl Handler<LinkTo> for Linker {
    fn handle(&mut self, LinkTo(c): LinkTo, cx: &mut Context<Self>) {
        cx.link(&c).unwrap();
    }
}
impl Handler<Trap> for Linker {
    fn handle(&mut self, Trap(on): Trap, cx: &mut Context<Self>) {
        cx.trap_exit(on);
    }
}
impl Handler<ExitsSoFar> for Linker {
    fn handle(&mut self, _: ExitsSoFar, _cx: &mut Context<Self>) -> Vec<procession::Exited> {
        self.exits.clone()
    }
}
impl Handler<Die> for Linker {
    fn handle(&mut self, _: Die, _cx: &mut Context<Self>) {
        std::process::abort()
    }
}
impl Handler<procession::Exited> for Linker {
    fn handle(&mut self, e: procession::Exited, _cx: &mut Context<Self>) {
        self.exits.push(e);
    }
}

/// Waits up to `timeout` for the linker to have an exit signal from `id`.
pub fn wait_exited(l: &ActorRef<Linker>, id: u64, timeout: Duration) -> Option<procession::Exited> {
    poll_until(timeout, || {
        l.ask(ExitsSoFar).unwrap().into_iter().find(|e| e.id == id)
    })
}
