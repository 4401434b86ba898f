//! `refund-worker publish [FILE|-]`: JSON lines to exchange `refunds`, routing
//! key `refund.approved`, persistent, mandatory, with publisher confirms.
//! Each line's bytes are sent as they are (invalid ones too: that is how a
//! dead letter is provoked on purpose).

use std::io::{BufRead, BufReader, Read};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
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

/// The confirms of a window, within [`CONFIRM_WAIT`].
async fn confirm_window(
    pending: &mut Vec<lapin::PublisherConfirm>,
    sent: usize,
    confirmed: usize,
) -> anyhow::Result<usize> {
    tokio::time::timeout(CONFIRM_WAIT, await_confirms(pending))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the broker confirmed nothing more within {} s ({confirmed} of {sent} events confirmed); \
                 the others may or may not have arrived: publishing them again is safe, \
                 intake stores a refund_id once",
                CONFIRM_WAIT.as_secs()
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

    let (mut sent, mut confirmed) = (0usize, 0usize);
    let mut pending = Vec::with_capacity(CONFIRM_WINDOW);
    for line in BufReader::new(input).split(b'\n') {
        let mut line = line.context("while reading the input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        pending.push(publish_one(&channel, &topology, &line).await?);
        sent += 1;
        if pending.len() == CONFIRM_WINDOW {
            confirmed += confirm_window(&mut pending, sent, confirmed).await?;
        }
    }
    confirmed += confirm_window(&mut pending, sent, confirmed).await?;
    conn.close(200, "done".into()).await.ok();
    println!("published {sent} events; the broker confirmed {confirmed}");
    Ok(if confirmed == sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
