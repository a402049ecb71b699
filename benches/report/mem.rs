//! Memory per idle actor (section 5): PSS and RSS from `/proc/PID/smaps_rollup`.

use procession::StartMethod;

use crate::{finish, median, smaps, spawn_sink, Cfg, Json, Ping, R};

pub(crate) fn bench_mem(cfg: &Cfg) -> R<()> {
    let count = cfg.n(20, 5);
    let mut fields: [(&str, Vec<f64>); 5] = [
        ("Pss", vec![]),
        ("Rss", vec![]),
        ("Pss_Anon", vec![]),
        ("Pss_File", vec![]),
        ("Pss_Shmem", vec![]),
    ];
    for _ in 0..cfg.reps {
        let mut actors = Vec::new();
        for _ in 0..count {
            let a = spawn_sink(StartMethod::Forkserver)?;
            a.ask(Ping).map_err(|e| format!("ask failed: {e}"))?;
            actors.push(a);
        }
        for (field, vals) in fields.iter_mut() {
            let per: Vec<f64> = actors
                .iter()
                .filter_map(|a| smaps(a.pid(), field))
                .collect();
            vals.push(median(&per));
        }
        for a in &actors {
            finish(a)?;
        }
    }
    let [pss, rss, anon, file, shmem] = &fields;
    let desc = |what: &str| {
        format!(
            "{what} of one idle actor process (forkserver start method), from \
             /proc/PID/smaps_rollup, with {count} such actors alive after one ask(Ping) each; \
             median over the actors, then over the reps. PSS divides shared pages among \
             the processes sharing them (the zygote and sibling actors)"
        )
    };
    Json::new("mem.idle_actor.pss")
        .s("desc", &desc("PSS (proportional set size)"))
        .s("unit", "KiB")
        .f("value", median(&pss.1))
        .s("stat", &format!("median of {} reps", pss.1.len()))
        .list("reps", &pss.1)
        .f("pss_anon_kib", median(&anon.1))
        .f("pss_file_kib", median(&file.1))
        .f("pss_shmem_kib", median(&shmem.1))
        .i("actors", count as u64)
        .emit();
    Json::new("mem.idle_actor.rss")
        .s("desc", &desc("RSS (resident set size)"))
        .s("unit", "KiB")
        .f("value", median(&rss.1))
        .s("stat", &format!("median of {} reps", rss.1.len()))
        .list("reps", &rss.1)
        .i("actors", count as u64)
        .emit();
    Ok(())
}
