//! `fleet`: runs every scenario for fleets of 10 to 10,000 hosts and prints
//! one Markdown table (the one in docs/fleet.md).
//!
//! `fleet [HOSTS...]` (default 10 100 1000 10000); exit status 1 when a
//! fleet misses a target.

use ssm_db_config_sim::{run, verdict, Fleet, Scenario};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("HOSTS must be numbers"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 100, 1_000, 10_000]
    } else {
        sizes
    };
    println!("| hosts | TTL s | scenario | SSM req/s mean | peak | throttled | req/host | all current after s | worst staleness s |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    let mut missed = Vec::new();
    for hosts in sizes {
        let fleet = Fleet::new(hosts);
        for scenario in Scenario::ALL {
            let r = run(fleet, scenario);
            println!(
                "| {} | {} | {} | {:.1} | {:.0} | {:.1} % | {:.2} | {} | {:.1} |",
                hosts,
                fleet.ttl.as_secs(),
                scenario.name(),
                r.rps_mean,
                r.rps_peak,
                r.throttled_share * 100.0,
                r.attempts_per_host,
                r.all_current_after
                    .map_or("-".to_owned(), |t| format!("{t:.1}")),
                r.worst_staleness,
            );
            missed.extend(
                verdict(&r)
                    .missed
                    .into_iter()
                    .map(|m| format!("{hosts} hosts: {m}")),
            );
        }
    }
    for m in &missed {
        eprintln!("missed: {m}");
    }
    std::process::exit(i32::from(!missed.is_empty()));
}
