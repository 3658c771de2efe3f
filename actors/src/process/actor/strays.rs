//! A stop's strays: the marker-holders that left the run's group are signalled with it, killed with
//! it after the grace, and the stop ends only once they are gone too (see [`crate::process::strays`]).

use std::time::Duration;

use actix::prelude::*;
use nix::sys::signal::Signal as NixSignal;

use super::super::strays::Sweep;
use super::ProcessActor;

/// How often a stop whose group is gone looks again whether its strays are: a scan reads all of /proc,
/// so it is spaced wider than the group's poll.
const STRAY_POLL: Duration = Duration::from_millis(50);

impl ProcessActor {
    /// Whether a stop sweeps strays: a marker scanner is set, the run is `ours` (an attached
    /// process carries no marker of ours), and it has no cgroup (which holds its strays anyway).
    pub(super) fn sweeps_strays(&self, ours: bool) -> bool {
        self.opts.strays.is_some() && ours && self.cgroup().is_none()
    }

    /// The stop signal (or SIGKILL) to the strays of this process, outside group `pgid`.
    pub(super) fn signal_strays(&self, sig: NixSignal, pgid: Option<i32>) {
        if let Some(scanner) = &self.opts.strays {
            let sweep = match sig {
                NixSignal::SIGKILL => Sweep::Kill,
                sig => Sweep::Signal {
                    sig: sig as i32,
                    skip_pgid: pgid,
                },
            };
            scanner.sweep_and_forget(&self.spec.name, sweep);
        }
    }

    /// The group of stop `run_id` is gone: the stop ends now, or once its strays are gone too.
    pub(super) fn group_gone(&mut self, run_id: u64, ctx: &mut Context<Self>) {
        let Some(i) = self.stops.iter().position(|s| s.run_id == run_id) else {
            return;
        };
        let stop = &mut self.stops[i];
        stop.group_gone = true;
        if let Some(poll) = stop.poll.take() {
            ctx.cancel_future(poll);
        }
        let scanner = self.opts.strays.clone().filter(|_| stop.strays);
        let Some(scanner) = scanner else {
            let stop = self.stops.swap_remove(i);
            self.finish_stop(stop, ctx);
            return;
        };
        let count = scanner.sweep(&self.spec.name, Sweep::Count);
        ctx.spawn(count.into_actor(self).map(move |left, act, ctx| {
            if left == 0 {
                if let Some(i) = act.stops.iter().position(|s| s.run_id == run_id) {
                    let stop = act.stops.swap_remove(i);
                    act.finish_stop(stop, ctx);
                }
            } else {
                // The kill timer is still armed: strays that ignore the stop signal die at the grace.
                ctx.run_later(STRAY_POLL, move |act, ctx| act.group_gone(run_id, ctx));
            }
        }));
    }
}
