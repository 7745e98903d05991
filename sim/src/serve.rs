//! The IO edge: one UDP socket per simulated device, so every device has
//! its own address as on a real LAN, and the control protocol for faults.

use crate::fleet::Fleet;
use crate::recording::Fault;

use std::sync::Arc;

/// Executes one line of the control protocol and returns the answer:
/// `fault KIND on|off [all|I[,J...]]`, `stats`, `list`.
pub fn control(fleet: &Fleet, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["fault", kind, state, rest @ ..] => {
            let fault: Fault = match kind.parse() {
                Ok(f) => f,
                Err(e) => return format!("error: {e}"),
            };
            let on = match *state {
                "on" => true,
                "off" => false,
                other => return format!("error: expected on or off, got {other:?}"),
            };
            let which: Vec<usize> = match rest {
                [] | ["all"] => (0..fleet.devices.len()).collect(),
                [list] => match list
                    .split(',')
                    .map(|x| x.parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(v) if v.iter().all(|i| *i < fleet.devices.len()) => v,
                    _ => return format!("error: device indexes are 0..{}", fleet.devices.len()),
                },
                _ => return "error: usage: fault KIND on|off [all|I,J,...]".into(),
            };
            for i in &which {
                fleet.devices[*i].set_fault(fault, on);
            }
            format!("ok: {kind} {state} on {} devices", which.len())
        }
        ["stats"] => format!(
            "devices {} requests {}",
            fleet.devices.len(),
            fleet.devices.iter().map(|d| d.requests()).sum::<u64>()
        ),
        ["list"] => fleet
            .devices
            .iter()
            .map(|d| {
                format!(
                    "{} {} {} {}",
                    d.index,
                    d.addr,
                    d.recording().name,
                    d.serial().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => "error: commands: fault KIND on|off [all|I,J,...]; stats; list".into(),
    }
}

/// Serves the fleet until the returned handle is dropped or aborted.
pub async fn serve(fleet: Arc<Fleet>) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::with_capacity(fleet.devices.len());
    for d in fleet.devices.clone() {
        let sock = Arc::new(tokio::net::UdpSocket::bind(d.addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", d.addr))
        })?);
        let fleet = fleet.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                let Some(answer) = fleet.handle(&d, &buf[..n]) else {
                    continue;
                };
                let delay = fleet.delay();
                if delay.is_zero() {
                    let _ = sock.send_to(&answer, from).await;
                } else {
                    let sock = sock.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = sock.send_to(&answer, from).await;
                    });
                }
            }
        }));
    }
    Ok(tasks)
}
