//! Real service restarts for `soak --restart-every`: RabbitMQ's application
//! stopped and started again (`rabbitmqctl stop_app`, `start_app`) or the
//! PostgreSQL cluster restarted (`pg_ctlcluster VERSION CLUSTER restart`),
//! one of the two at a seeded interval around the one given. Unlike the
//! proxy cuts, these reach every client of the services, the soak's own
//! connections included, so they are for a machine of one's own; the
//! commands need root (or the services' own users).

use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Real restarts done, by service.
#[derive(Debug, Default, Clone, Copy)]
pub struct Restarted {
    pub broker: usize,
    pub database: usize,
}

/// Restarts a service at about every `every` until `stop`; each restart is
/// complete (the service answering) before it returns.
pub async fn run(every: Duration, seed: u64, stop: CancellationToken) -> anyhow::Result<Restarted> {
    let cluster = postgres_cluster().await?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7e57_a7a7);
    let mut done = Restarted::default();
    let mean = every.as_millis().max(1000) as u64;
    loop {
        let gap = Duration::from_millis(rng.random_range(mean / 2..=mean * 3 / 2));
        tokio::select! {
            _ = stop.cancelled() => return Ok(done),
            _ = tokio::time::sleep(gap) => {}
        }
        if rng.random_bool(0.5) {
            eprintln!("soak: restarting RabbitMQ (stop_app, start_app)");
            command("rabbitmqctl", &["stop_app"]).await?;
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..=1500))).await;
            command("rabbitmqctl", &["start_app"]).await?;
            done.broker += 1;
        } else {
            eprintln!("soak: restarting PostgreSQL {} {}", cluster.0, cluster.1);
            let args = [
                "--skip-systemctl-redirect",
                &cluster.0,
                &cluster.1,
                "restart",
            ];
            command("pg_ctlcluster", &args).await?;
            done.database += 1;
        }
    }
}

/// The version and name of the first PostgreSQL cluster `pg_lsclusters` lists.
async fn postgres_cluster() -> anyhow::Result<(String, String)> {
    let out = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .await
        .context("--restart-every needs pg_lsclusters (Debian's postgresql-common)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_cluster(&text).context("pg_lsclusters lists no PostgreSQL cluster to restart")
}

/// `15 main 5432 online postgres …` → ("15", "main").
fn parse_cluster(listing: &str) -> Option<(String, String)> {
    let mut fields = listing.lines().next()?.split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

/// Runs a command to its end; an error says which and what it printed.
async fn command(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .await
        .with_context(|| format!("cannot run {program}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{program} {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_cluster;

    #[test]
    fn the_first_cluster_listed_is_restarted() {
        let listing = "15 main 5432 online postgres /var/lib/postgresql/15/main /var/log/x.log\n16 other 5433 down postgres /x /y\n";
        assert_eq!(parse_cluster(listing), Some(("15".into(), "main".into())));
        assert_eq!(parse_cluster(""), None);
        assert_eq!(parse_cluster("15\n"), None);
    }
}
