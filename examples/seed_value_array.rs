//! Python's shared-memory example, ported: a child process writes a shared `Value` and
//! an element of a shared `Array`, and the parent sees the writes.
//!
//! ```python
//! def f(n, a):
//!     n.value = 10.78
//!     a[2] = 9999
//!
//! if __name__ == '__main__':
//!     num = Value('d', 0.0)
//!     arr = Array('i', range(10))
//!     p = Process(target=f, args=(num, arr))
//!     p.start()
//!     p.join()
//!     print(num.value)   # 10.78
//!     print(arr[:])      # [0, 1, 9999, 3, 4, 5, 6, 7, 8, 9]
//! ```
//!
//! Run with `cargo run --release --example seed_value_array`.

use procession::prelude::*;
use procession::shared::{Array, Value};

/// The parent's "go": write, then stop.
#[derive(Serialize, Deserialize, Message)]
struct Write;

/// The child: handles to the shared value and array, given at spawn.
#[derive(Serialize, Deserialize, Actor)]
#[actor(handles(Write))]
struct Writer {
    num: Value<f64>,
    arr: Array<i32>,
}

impl Handler<Write> for Writer {
    fn handle(&mut self, _: Write, cx: &mut Context<Self>) {
        self.num.set(10.78);
        if let Err(e) = self.arr.set(2, 9999) {
            eprintln!("child: {e}");
        }
        println!("child (pid {}) wrote num and arr[2]", cx.pid());
        cx.stop();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let num = Value::new(0.0f64)?;
    let arr = Array::from_slice(&(0..10).collect::<Vec<i32>>())?;
    println!("before: num = {}, arr = {:?}", num.get(), arr.to_vec());

    let child = procession::spawn::<Writer>(Writer {
        num: num.clone(),
        arr: arr.clone(),
    })?;
    child.tell(Write)?;
    let exit = child.join()?;
    if exit != Exit::Normal {
        return Err(format!("the child ended badly: {exit}").into());
    }

    println!("num = {}", num.get());
    println!("arr = {:?}", arr.to_vec());
    Ok(())
}
