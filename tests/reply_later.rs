//! Replying later (`Context::reply_later` and `ReplyToken`) and the context's timers
//! (`send_interval`, `send_self_after`, `cancel_timer`).

mod common;

use std::time::{Duration, Instant};

use common::{stop_and_join, wait_at_gate, Gate, LONG};
use procession::prelude::*;
use procession::{Error, ReplyToken, TimerHandle};

// ---- reply later ----------------------------------------------------------------------

/// Replied to from a thread of the actor's, once the gate at the path opens.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = String)]
struct Later(String);

/// Replied to by the `Back` actor the token is sent to: with its pid.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Elsewhere(ActorRef<Back>);

/// The token is dropped without a reply.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Forget;

#[derive(Serialize, Deserialize, Message)]
#[message(reply = u64)]
struct Echo(u64);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Later, Elsewhere, Forget, Echo))]
struct Front;

impl Handler<Later> for Front {
    fn handle(&mut self, Later(path): Later, cx: &mut Context<Self>) -> String {
        let token = cx.reply_later::<Later>().expect("an ask has a token");
        std::thread::spawn(move || {
            wait_at_gate(&path);
            token.reply("done later".to_string())
        });
        "not sent".into()
    }
}

impl Handler<Elsewhere> for Front {
    fn handle(&mut self, Elsewhere(back): Elsewhere, cx: &mut Context<Self>) -> u32 {
        let token = cx.reply_later::<Elsewhere>().expect("an ask has a token");
        back.tell(Answer(token)).expect("hand the token over");
        0
    }
}

impl Handler<Forget> for Front {
    fn handle(&mut self, _: Forget, cx: &mut Context<Self>) -> u64 {
        drop(cx.reply_later::<Forget>());
        7
    }
}

impl Handler<Echo> for Front {
    fn handle(&mut self, Echo(x): Echo, cx: &mut Context<Self>) -> u64 {
        // Not an ask of another type's token, and a tell has none.
        assert!(cx.reply_later::<Forget>().is_none());
        x
    }
}

#[derive(Serialize, Deserialize, Message)]
struct Answer(ReplyToken<u32>);

#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Answer))]
struct Back;

impl Handler<Answer> for Back {
    fn handle(&mut self, Answer(token): Answer, cx: &mut Context<Self>) {
        token.reply(cx.pid()).expect("reply from the other actor");
    }
}

#[test]
fn an_actor_handles_other_messages_while_a_deferred_reply_is_pending() {
    let front = Front.spawn().unwrap();
    let gate = Gate::new();
    let path = gate.path();
    let asker = {
        let front = front.clone();
        std::thread::spawn(move || front.ask_timeout(Later(path), LONG))
    };
    // The replying thread waits at the gate: the handler has returned.
    let arrived = gate.arrival(LONG);
    assert_eq!(front.ask_timeout(Echo(5), LONG).unwrap(), 5);
    assert!(!asker.is_finished(), "the deferred ask was answered early");
    arrived.release();
    assert_eq!(asker.join().unwrap().unwrap(), "done later");
    stop_and_join(&front);
}

#[test]
fn a_reply_token_sent_to_another_actor_is_answered_from_there() {
    let front = Front.spawn().unwrap();
    let back = Back.spawn().unwrap();
    let pid = front.ask_timeout(Elsewhere(back.clone()), LONG).unwrap();
    assert_eq!(
        pid,
        back.pid(),
        "the reply came from the actor the token went to"
    );
    stop_and_join(&front);
    stop_and_join(&back);
}

#[test]
fn a_reply_token_dropped_without_a_reply_fails_the_ask_at_once_with_no_reply() {
    let front = Front.spawn().unwrap();
    let started = Instant::now();
    let r = front.ask_timeout(Forget, LONG);
    assert!(matches!(r, Err(Error::NoReply { .. })), "{r:?}");
    assert!(started.elapsed() < LONG, "the asker waited for its timeout");
    stop_and_join(&front);
}

#[test]
fn an_async_asker_gets_a_deferred_reply() {
    let front = Front.spawn().unwrap();
    let back = Back.spawn().unwrap();
    let pid = futures::executor::block_on(front.ask_async_timeout(Elsewhere(back.clone()), LONG))
        .unwrap();
    assert_eq!(pid, back.pid());
    let r = futures::executor::block_on(front.ask_async_timeout(Forget, LONG));
    assert!(matches!(r, Err(Error::NoReply { .. })), "{r:?}");
    stop_and_join(&front);
    stop_and_join(&back);
}

// ---- timers ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Message)]
struct Tick;

#[derive(Serialize, Deserialize, Message)]
struct Boom;

#[derive(Serialize, Deserialize, Message)]
struct Marker;

/// Starts an interval timer of this many milliseconds.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<(), String>)]
struct Every(u64);

/// Cancels the interval timer, then sets a marker after 50 ms; replies whether the
/// interval was pending.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = bool)]
struct StopTicking;

/// Sets Boom after 10 ms and the marker after 60 ms, and cancels Boom at once; replies
/// whether Boom was pending.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = bool)]
struct DefuseBoom;

/// (ticks, booms, markers, pending timers)
#[derive(Serialize, Deserialize, Message)]
#[message(reply = (u64, u64, u64, usize))]
struct Counts;

#[derive(Actor)]
#[actor(handles(Tick, Boom, Marker, Every, StopTicking, DefuseBoom, Counts), args = ())]
struct Clock {
    interval: Option<TimerHandle>,
    ticks: u64,
    booms: u64,
    markers: u64,
}

impl Actor for Clock {
    type Args = ();
    fn create(_: (), _cx: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(Clock {
            interval: None,
            ticks: 0,
            booms: 0,
            markers: 0,
        })
    }
}

impl Handler<Tick> for Clock {
    fn handle(&mut self, _: Tick, _cx: &mut Context<Self>) {
        self.ticks += 1;
    }
}

impl Handler<Boom> for Clock {
    fn handle(&mut self, _: Boom, _cx: &mut Context<Self>) {
        self.booms += 1;
    }
}

impl Handler<Marker> for Clock {
    fn handle(&mut self, _: Marker, _cx: &mut Context<Self>) {
        self.markers += 1;
    }
}

impl Handler<Every> for Clock {
    fn handle(&mut self, Every(ms): Every, cx: &mut Context<Self>) -> Result<(), String> {
        let h = cx
            .send_interval(Duration::from_millis(ms), Tick)
            .map_err(|e| e.to_string())?;
        self.interval = Some(h);
        Ok(())
    }
}

impl Handler<StopTicking> for Clock {
    fn handle(&mut self, _: StopTicking, cx: &mut Context<Self>) -> bool {
        let was = self.interval.take().is_some_and(|h| cx.cancel_timer(h));
        cx.send_self_after(Duration::from_millis(50), Marker)
            .unwrap();
        was
    }
}

impl Handler<DefuseBoom> for Clock {
    fn handle(&mut self, _: DefuseBoom, cx: &mut Context<Self>) -> bool {
        let boom = cx.send_self_after(Duration::from_millis(10), Boom).unwrap();
        cx.send_self_after(Duration::from_millis(60), Marker)
            .unwrap();
        let was = cx.cancel_timer(boom);
        assert!(!cx.cancel_timer(boom), "a timer is cancelled once");
        was
    }
}

impl Handler<Counts> for Clock {
    fn handle(&mut self, _: Counts, cx: &mut Context<Self>) -> (u64, u64, u64, usize) {
        (self.ticks, self.booms, self.markers, cx.pending_timers())
    }
}

/// Asks for the counts until `done` holds of them (with a deadline).
fn counts_until(
    clock: &ActorRef<Clock>,
    done: impl Fn(&(u64, u64, u64, usize)) -> bool,
) -> (u64, u64, u64, usize) {
    let deadline = Instant::now() + LONG;
    loop {
        let c = clock.ask_timeout(Counts, LONG).unwrap();
        if done(&c) {
            return c;
        }
        assert!(Instant::now() < deadline, "never reached: {c:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn send_interval_delivers_again_and_again_until_it_is_cancelled() {
    let clock: ActorRef<Clock> = procession::spawn(()).unwrap();
    clock.ask_timeout(Every(5), LONG).unwrap().unwrap();
    counts_until(&clock, |c| c.0 >= 3);
    assert!(clock.ask_timeout(StopTicking, LONG).unwrap(), "was pending");
    // The marker, set at the cancel, fires 50 ms later: ten periods of the interval.
    let (ticks_at_marker, _, _, pending) = counts_until(&clock, |c| c.2 == 1);
    assert_eq!(pending, 0, "no timer is left");
    let (ticks_now, ..) = clock.ask_timeout(Counts, LONG).unwrap();
    assert_eq!(ticks_now, ticks_at_marker);
    stop_and_join(&clock);
}

#[test]
fn no_tick_follows_the_cancel_of_an_interval() {
    let clock: ActorRef<Clock> = procession::spawn(()).unwrap();
    clock.ask_timeout(Every(5), LONG).unwrap().unwrap();
    counts_until(&clock, |c| c.0 >= 1);
    // Ticks handled before the cancel are counted; none after it.
    assert!(clock.ask_timeout(StopTicking, LONG).unwrap());
    let (before, ..) = clock.ask_timeout(Counts, LONG).unwrap();
    let (after, ..) = counts_until(&clock, |c| c.2 == 1);
    assert_eq!(
        after, before,
        "a tick came after the interval was cancelled"
    );
    stop_and_join(&clock);
}

#[test]
fn a_cancelled_send_self_after_never_arrives() {
    let clock: ActorRef<Clock> = procession::spawn(()).unwrap();
    assert!(clock.ask_timeout(DefuseBoom, LONG).unwrap(), "was pending");
    // The marker was due 50 ms after the cancelled Boom.
    let (_, booms, markers, pending) = counts_until(&clock, |c| c.2 == 1);
    assert_eq!((booms, markers, pending), (0, 1, 0));
    stop_and_join(&clock);
}

#[test]
fn send_interval_refuses_a_zero_period() {
    let clock: ActorRef<Clock> = procession::spawn(()).unwrap();
    let r = clock.ask_timeout(Every(0), LONG).unwrap();
    assert!(r.is_err_and(|e| e.contains("period")));
    stop_and_join(&clock);
}
