//! The supervisor actor: it starts its children, watches them, restarts them by its
//! rules, and stops them in reverse order. See the [module docs](super) for the rules.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::spec::{AutoShutdown, ChildKind, ChildSpec, Restart, Shutdown, Strategy, Supervisor};
use crate::actor::{send_stop, Actor, ActorRef, BoxError, Context, Dispatch, Handler};
use crate::error::{Error, Result};
use crate::mailbox::{Mailbox, Wait, LIVENESS_SLICE, STATE_EXITED};
use crate::process::{fork, names, runtime, Down, SpawnOptions};
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

/// Ask: start a child — a new spec (static strategies), or the template with these
/// arguments ([`Strategy::Dynamic`]). Replies with its mailbox id.
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = std::result::Result<u64, String>, tag = "procession::supervisor::StartChild")]
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
#[message(reply = std::result::Result<(), String>, tag = "procession::supervisor::TerminateChild")]
pub struct TerminateChild(pub String);

/// Ask: start again the terminated child with this id.
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = std::result::Result<(), String>, tag = "procession::supervisor::RestartChild")]
pub struct RestartChild(pub String);

/// Ask: forget the terminated child with this id.
#[derive(Debug, Serialize, Deserialize, crate::Message)]
#[message(reply = std::result::Result<(), String>, tag = "procession::supervisor::DeleteChild")]
pub struct DeleteChild(pub String);

/// Timer: a delayed (backoff) restart is due.
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
}

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
        }
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
        }
    }
}

/// The supervisor actor. Start one with [`Supervisor::spawn`]; talk to it through the
/// methods on `ActorRef<SupervisorActor>`.
#[derive(crate::Actor)]
#[actor(
    handles(Down, WhichChildren, CountChildren, Tree, StartChild, TerminateChild, RestartChild, DeleteChild, RestartDue),
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
}

impl Actor for SupervisorActor {
    type Args = Supervisor;

    fn create(mut cfg: Supervisor, cx: &mut Context<Self>) -> std::result::Result<Self, BoxError> {
        let specs = std::mem::take(&mut cfg.children);
        if cfg.strategy == Strategy::Dynamic && (cfg.template.is_none() || !specs.is_empty()) {
            return Err("a Dynamic supervisor needs a template and no static children".into());
        }
        let mut sup = SupervisorActor {
            cfg,
            me: cx.myself().id(),
            children: Vec::new(),
            restarts: VecDeque::new(),
            dynamic_seq: 0,
            generation: 0,
        };
        for spec in specs {
            if sup.position(&spec.id).is_some() {
                sup.terminate_all();
                return Err(format!("two children have the id {:?}", spec.id).into());
            }
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

    /// Starts (or restarts, on the same mailbox) child `idx` now.
    fn start_now(&mut self, idx: usize) -> Result<()> {
        let me = self.me;
        let child = &mut self.children[idx];
        if let Some(e) = &child.spec.args_error {
            return Err(Error::Runtime(format!(
                "its arguments could not be encoded: {e}"
            )));
        }
        let mut opts = SpawnOptions::new();
        opts.method = child.spec.start_method;
        if let Some(c) = child.spec.capacity {
            opts = opts.capacity(c);
        }
        opts.supervised = true;
        opts.watcher = Some(me);
        if child.mailbox.is_none() && self.cfg.strategy != Strategy::Dynamic {
            // The mailbox belongs to this place in the tree, not to this process: a next
            // incarnation of this supervisor adopts it, with what is queued in it.
            let id = crate::mailbox::tree_id(me, &child.spec.id);
            if let Some(rt) = runtime::current() {
                crate::mailbox::record_tree_child(rt.dir(), me, id);
            }
            opts.tree_id = Some(id);
        }
        let mb = match &child.mailbox {
            None => crate::process::start(&child.spec.actor, child.spec.args.clone(), &opts)?,
            Some(mb) => {
                mb.reset_for_restart();
                mb.add_watcher(me, false);
                crate::process::start_on(mb, &child.spec.actor, child.spec.args.clone(), &opts)?;
                mb.clone()
            }
        };
        child.pid = Some(mb.pid());
        child.mailbox = Some(mb);
        child.state = ChildState::Running;
        child.started_at = Some(Instant::now());
        tracing::info!(child = %child.spec.id, pid = child.pid, "child started");
        Ok(())
    }

    /// Terminates child `idx` by its shutdown spec and waits until it has exited.
    fn terminate(&mut self, idx: usize) {
        let child = &mut self.children[idx];
        let pid = child.pid.take();
        if child.state == ChildState::Restarting {
            child.state = ChildState::Terminated;
        }
        let (Some(mb), Some(pid)) = (child.mailbox.clone(), pid) else {
            return;
        };
        child.state = ChildState::Terminated;
        if mb.state() == STATE_EXITED {
            return;
        }
        // Through the process that started it (the zygote), never by a pid in memory.
        let kill = || {
            fork::kill_consumer(mb.id());
        };
        // Queue the graceful stop: within the timeout, or (Infinity) for as long as the
        // child lives, however full its mailbox.
        let stop = |timeout: Option<Duration>| {
            let wait = timeout.map_or(Wait::Forever, |t| Wait::from_timeout(Some(t)));
            send_stop(&mb, Some(mb.incarnation()), wait).is_ok()
        };
        match child.spec.shutdown {
            Shutdown::BrutalKill => kill(),
            Shutdown::Timeout(d) => {
                let start = Instant::now();
                if !stop(Some(d)) || !wait_exit(&mb, Some(d.saturating_sub(start.elapsed()))) {
                    tracing::warn!(child = %child.spec.id, pid, "shutdown timeout expired; killing");
                    kill();
                }
            }
            Shutdown::Infinity => {
                if !stop(None) {
                    kill();
                }
            }
        }
        wait_exit(&mb, None);
    }

    /// The child will not run again: its mailbox and names go, a temporary spec goes.
    fn retire(&mut self, idx: usize) {
        let child = &mut self.children[idx];
        child.state = ChildState::Terminated;
        child.pid = None;
        if let Some(mb) = child.mailbox.take() {
            mb.set_final();
            mb.unlink();
            if let Some(rt) = runtime::current() {
                names::release_names_of(rt.dir(), mb.id());
                crate::mailbox::finalize_tree(rt.dir(), mb.id());
            }
        }
    }

    fn terminate_all(&mut self) {
        for idx in (0..self.children.len()).rev() {
            self.terminate(idx);
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
        tracing::error!(%reason, "supervisor shutting down");
        self.terminate_all();
        cx.shutdown(reason);
    }

    /// Restarts the children at `indices` (in order), now or after the backoff delay.
    fn restart(&mut self, indices: Vec<usize>, delay: Option<Duration>, cx: &mut Context<Self>) {
        if let Some(d) = delay.filter(|d| !d.is_zero()) {
            self.generation += 1;
            let ids = indices
                .iter()
                .map(|&i| self.children[i].spec.id.clone())
                .collect();
            for &i in &indices {
                self.children[i].state = ChildState::Restarting;
                self.children[i].generation = self.generation;
            }
            let due = RestartDue {
                ids,
                generation: self.generation,
            };
            if cx.send_self_after(d, due).is_ok() {
                return;
            }
        }
        for idx in indices {
            self.children[idx].restarts += 1;
            loop {
                match self.start_now(idx) {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(child = %self.children[idx].spec.id, error = %e, "restart failed");
                        if !self.allow_restart() {
                            let reason = format!(
                                "reached maximum restart intensity ({} in {:?}) restarting {:?}",
                                self.cfg.intensity, self.cfg.period, self.children[idx].spec.id
                            );
                            return self.give_up(cx, reason);
                        }
                    }
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
        if self.children[idx].spec.restart == Restart::Temporary
            || self.cfg.strategy == Strategy::Dynamic
        {
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
}

/// Waits until the process consuming `mb` has exited (at most `timeout`); `true` if it has.
fn wait_exit(mb: &Mailbox, timeout: Option<Duration>) -> bool {
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
            c.pid == Some(down.pid) && c.mailbox.as_ref().is_some_and(|m| m.id() == down.id)
        }) else {
            return;
        };
        let child = &mut self.children[idx];
        child.pid = None;
        tracing::warn!(child = %child.spec.id, pid = down.pid, exit = %down.exit, "child exited");
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
        // The group: the exited child, and (by strategy) the siblings that are running or
        // waiting to restart; a sibling that has already exited for good stays so.
        let live = |i: &usize| *i == idx || self.children[*i].state != ChildState::Terminated;
        let group: Vec<usize> = match self.cfg.strategy {
            Strategy::OneForOne | Strategy::Dynamic => vec![idx],
            Strategy::OneForAll => (0..n).filter(live).collect(),
            Strategy::RestForOne => (idx..n).filter(live).collect(),
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
        let indices = restart_ids
            .iter()
            .filter_map(|id| self.position(id))
            .collect();
        self.restart(indices, delay, cx);
    }
}

impl Handler<RestartDue> for SupervisorActor {
    fn handle(&mut self, due: RestartDue, cx: &mut Context<Self>) {
        let indices: Vec<usize> = due
            .ids
            .iter()
            .filter_map(|id| self.position(id))
            .filter(|&i| {
                self.children[i].state == ChildState::Restarting
                    && self.children[i].generation == due.generation
            })
            .collect();
        self.restart(indices, None, cx);
    }
}

impl Handler<WhichChildren> for SupervisorActor {
    fn handle(&mut self, _: WhichChildren, _cx: &mut Context<Self>) -> Vec<ChildInfo> {
        self.children.iter().map(Child::info).collect()
    }
}

impl Handler<CountChildren> for SupervisorActor {
    fn handle(&mut self, _: CountChildren, _cx: &mut Context<Self>) -> ChildCounts {
        let kind = |k| self.children.iter().filter(|c| c.spec.kind == k).count();
        ChildCounts {
            specs: self.children.len(),
            active: self.children.iter().filter(|c| c.pid.is_some()).count(),
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
                let below = match (&c.mailbox, c.spec.kind, c.pid) {
                    (Some(mb), ChildKind::Supervisor, Some(_)) => {
                        ActorRef::<SupervisorActor>::from_mailbox(mb.clone())
                            .ask_timeout(Tree, Duration::from_secs(5))
                            .map(|t| t.children)
                            .unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
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
    ) -> std::result::Result<u64, String> {
        let spec = match (req, self.cfg.strategy, &self.cfg.template) {
            (StartChild::Args(args), Strategy::Dynamic, Some(t)) => {
                self.dynamic_seq += 1;
                let mut spec = t.clone();
                spec.id = format!("{}-{}", t.id, self.dynamic_seq);
                spec.args = args.into_vec();
                spec
            }
            (StartChild::Spec(spec), s, _) if s != Strategy::Dynamic => {
                if self.position(&spec.id).is_some() {
                    return Err(format!("a child with id {:?} exists already", spec.id));
                }
                spec
            }
            (StartChild::Args(_), ..) => {
                return Err("only a Dynamic supervisor starts children from arguments".into())
            }
            (StartChild::Spec(_), ..) => {
                return Err("a Dynamic supervisor starts children from its template".into())
            }
        };
        self.children.push(Child::new(spec));
        let idx = self.children.len() - 1;
        match self.start_now(idx) {
            Ok(()) => Ok(self.children[idx].mailbox.as_ref().map_or(0, |m| m.id())),
            Err(e) => {
                self.retire(idx);
                self.children.pop();
                Err(e.to_string())
            }
        }
    }
}

impl Handler<TerminateChild> for SupervisorActor {
    fn handle(
        &mut self,
        TerminateChild(id): TerminateChild,
        _cx: &mut Context<Self>,
    ) -> std::result::Result<(), String> {
        let idx = self
            .position(&id)
            .ok_or_else(|| format!("no child {id:?}"))?;
        self.terminate(idx);
        self.retire(idx);
        if self.children[idx].spec.restart == Restart::Temporary
            || self.cfg.strategy == Strategy::Dynamic
        {
            self.children.remove(idx);
        }
        Ok(())
    }
}

impl Handler<RestartChild> for SupervisorActor {
    fn handle(
        &mut self,
        RestartChild(id): RestartChild,
        _cx: &mut Context<Self>,
    ) -> std::result::Result<(), String> {
        let idx = self
            .position(&id)
            .ok_or_else(|| format!("no child {id:?}"))?;
        if self.children[idx].state != ChildState::Terminated {
            return Err(format!("child {id:?} is not terminated"));
        }
        self.start_now(idx).map_err(|e| e.to_string())
    }
}

impl Handler<DeleteChild> for SupervisorActor {
    fn handle(
        &mut self,
        DeleteChild(id): DeleteChild,
        _cx: &mut Context<Self>,
    ) -> std::result::Result<(), String> {
        let idx = self
            .position(&id)
            .ok_or_else(|| format!("no child {id:?}"))?;
        if self.children[idx].state != ChildState::Terminated {
            return Err(format!("child {id:?} is running: terminate it first"));
        }
        self.children.remove(idx);
        Ok(())
    }
}

fn remote(e: String) -> Error {
    Error::Runtime(e)
}

impl ActorRef<SupervisorActor> {
    /// The children, in start order (OTP's `which_children`).
    pub fn which_children(&self) -> Result<Vec<ChildInfo>> {
        self.ask(WhichChildren)
    }

    /// Counts of children (OTP's `count_children`).
    pub fn count_children(&self) -> Result<ChildCounts> {
        self.ask(CountChildren)
    }

    /// A snapshot of the whole tree below this supervisor; `Display` prints it as a tree.
    pub fn tree(&self) -> Result<TreeNode> {
        self.ask(Tree)
    }

    /// A reference to the child with this id, if it is running and is an `A`.
    pub fn child<A: Dispatch>(&self, id: &str) -> Result<ActorRef<A>> {
        let info = self
            .which_children()?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| Error::BadRef(format!("no child {id:?}")))?;
        if info.actor != A::NAME {
            return Err(Error::BadRef(format!(
                "child {id:?} is a {}, not a {}",
                info.actor,
                A::NAME
            )));
        }
        let mailbox = info
            .mailbox
            .ok_or_else(|| Error::BadRef(format!("child {id:?} has not started")))?;
        let rt = runtime::get()?;
        let mb = Mailbox::open(rt.dir(), mailbox)
            .map_err(|e| Error::BadRef(format!("child {id:?}: {e}")))?;
        Ok(ActorRef::from_mailbox(mb))
    }

    /// Adds and starts a child (static strategies).
    pub fn start_child(&self, spec: ChildSpec) -> Result<()> {
        self.ask(StartChild::Spec(spec))?
            .map(|_| ())
            .map_err(remote)
    }

    /// Starts a child of a [`Strategy::Dynamic`] supervisor from its template, with these
    /// arguments; `A` must be the template's actor type.
    pub fn start_dynamic<A: Dispatch>(&self, args: A::Args) -> Result<ActorRef<A>> {
        let mut bytes = Vec::new();
        crate::wire::encode_body(&args, &mut bytes)?;
        let id = self
            .ask(StartChild::Args(ByteBuf::from(bytes)))?
            .map_err(remote)?;
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

    /// Terminates a child by its shutdown spec.
    pub fn terminate_child(&self, id: &str) -> Result<()> {
        self.ask(TerminateChild(id.to_string()))?.map_err(remote)
    }

    /// Starts a terminated child again.
    pub fn restart_child(&self, id: &str) -> Result<()> {
        self.ask(RestartChild(id.to_string()))?.map_err(remote)
    }

    /// Forgets a terminated child.
    pub fn delete_child(&self, id: &str) -> Result<()> {
        self.ask(DeleteChild(id.to_string()))?.map_err(remote)
    }
}
