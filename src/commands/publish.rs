//! `refund-worker publish [FILE|-]`: JSON lines to exchange `refunds`, routing
//! key `refund.approved`, persistent, mandatory, with publisher confirms.
//! Each line's bytes are sent as they are (invalid ones too: that is how a
//! dead letter is provoked on purpose).

use std::io::{BufRead, BufReader, Read};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use lapin::Channel;
use lapin::options::ConfirmSelectOptions;

use crate::amqp::publish::{await_confirms, publish_one};
use crate::amqp::{self, Topology};
use crate::config::Settings;

/// Confirms awaited together; bounds memory for large files.
const CONFIRM_WINDOW: usize = 1000;

/// The longest wait for one window's confirms: a broker that stops
/// answering (a node gone without closing the connection) ends the command
/// instead of holding it for ever.
const CONFIRM_WAIT: Duration = Duration::from_secs(30);

/// The confirms of a window, within `wait`.
async fn confirm_window(
    pending: &mut Vec<lapin::PublisherConfirm>,
    sent: usize,
    confirmed: usize,
    wait: Duration,
) -> anyhow::Result<usize> {
    tokio::time::timeout(wait, await_confirms(pending))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the broker confirmed nothing more within {} s ({confirmed} of {sent} events confirmed); \
                 the others may or may not have arrived: publishing them again is safe, \
                 intake stores a refund_id once",
                wait.as_secs_f64()
            )
        })?
}

pub async fn publish(settings: &Settings, file: Option<&str>) -> anyhow::Result<ExitCode> {
    let input: Box<dyn Read> = match file {
        None | Some("-") => Box::new(std::io::stdin()),
        Some(path) => {
            Box::new(std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?)
        }
    };
    let conn = amqp::connect(&settings.amqp.url, "refund-worker publish")
        .await
        .context("while connecting to RabbitMQ (AMQP_URL)")?;
    let channel = conn.create_channel().await?;
    let topology = Topology::of(&settings.amqp);
    topology
        .declare(&channel)
        .await
        .context("while declaring the topology")?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

    let (sent, confirmed) =
        publish_lines(&channel, &topology, BufReader::new(input), CONFIRM_WAIT).await?;
    amqp::liveness::close(&conn, "done").await;
    println!("published {sent} events; the broker confirmed {confirmed}");
    Ok(if confirmed == sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Publishes each non-blank line of `input` on `channel` (in confirm mode),
/// awaiting the confirms of every [`CONFIRM_WINDOW`] at most `wait`; the
/// events sent and confirmed, or an error saying how far it got.
pub async fn publish_lines(
    channel: &Channel,
    topology: &Topology,
    input: impl BufRead,
    wait: Duration,
) -> anyhow::Result<(usize, usize)> {
    let (mut sent, mut confirmed) = (0usize, 0usize);
    let mut pending = Vec::with_capacity(CONFIRM_WINDOW);
    for line in input.split(b'\n') {
        let mut line = line.context("while reading the input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        pending.push(publish_one(channel, topology, &line).await?);
        sent += 1;
        if pending.len() == CONFIRM_WINDOW {
            confirmed += confirm_window(&mut pending, sent, confirmed, wait).await?;
        }
    }
    confirmed += confirm_window(&mut pending, sent, confirmed, wait).await?;
    Ok((sent, confirmed))
}
