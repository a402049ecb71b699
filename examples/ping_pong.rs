//! Two actors in two processes: main hands Ping a reference to Pong inside a message, then
//! Ping plays a few rounds with Pong, each side printing its own pid.
//!
//! Run with `cargo run --release --example ping_pong`.

use std::time::Duration;

use procession::prelude::*;

/// How many rounds Ping plays.
const ROUNDS: u32 = 5;

/// Ping → Pong: one ball; Pong replies with the round number it saw.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Ball(u32);

/// Answers every ball.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Ball))]
struct Pong;

impl Handler<Ball> for Pong {
    fn handle(&mut self, Ball(n): Ball, cx: &mut Context<Self>) -> u32 {
        println!("pong {n} from pid {}", cx.pid());
        n
    }
}

/// main → Ping: here is your partner. Ping replies with Pong's pid as it sees it, which
/// shows that the reference works in Ping's process.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = u32)]
struct Meet(ActorRef<Pong>);

/// main → Ping: play this many rounds; the reply is the number of rounds completed, or
/// what went wrong.
#[derive(Serialize, Deserialize, Message)]
#[message(reply = Result<u32, String>)]
struct Play(u32);

/// Serves balls to the partner it was introduced to.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Meet, Play))]
struct Ping {
    partner: Option<ActorRef<Pong>>,
}

impl Handler<Meet> for Ping {
    fn handle(&mut self, Meet(pong): Meet, _cx: &mut Context<Self>) -> u32 {
        let pid = pong.pid();
        self.partner = Some(pong);
        pid
    }
}

impl Handler<Play> for Ping {
    fn handle(&mut self, Play(rounds): Play, cx: &mut Context<Self>) -> Result<u32, String> {
        let pong = self.partner.as_ref().ok_or("Ping has no partner yet")?;
        for n in 1..=rounds {
            println!("ping {n} from pid {}", cx.pid());
            let back = pong
                .ask_timeout(Ball(n), Duration::from_secs(10))
                .map_err(|e| format!("round {n}: {e}"))?;
            if back != n {
                return Err(format!("round {n}: Pong returned ball {back}"));
            }
        }
        Ok(rounds)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("main process: pid {}", std::process::id());
    let pong: ActorRef<Pong> = procession::spawn(Pong)?;
    let ping: ActorRef<Ping> = procession::spawn(Ping { partner: None })?;
    println!(
        "spawned Ping (pid {}) and Pong (pid {})",
        ping.pid(),
        pong.pid()
    );

    let seen = ping.ask(Meet(pong.clone()))?;
    println!("Ping received a reference to Pong and sees it at pid {seen}");

    let played = ping.ask_timeout(Play(ROUNDS), Duration::from_secs(60))??;
    println!("Ping and Pong played {played} rounds");

    ping.stop()?;
    pong.stop()?;
    println!("ping: {}", ping.join()?);
    println!("pong: {}", pong.join()?);
    Ok(())
}
