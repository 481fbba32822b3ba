//! Printing: JSON documents under `--json`, plain lines otherwise. A closed stdout (a
//! broken pipe, e.g. `| head`) ends the process quietly.

use std::io::Write;

use jobspool::{json, Error, EventRecord, Job, ScheduledJob, Stats};
use serde_json::Value;

pub(crate) struct Out {
    json: bool,
}

fn line(s: &str) {
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{s}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

impl Out {
    pub fn new(json: bool) -> Self {
        Out { json }
    }

    pub fn value(&self, v: &Value, human: &str) {
        if self.json {
            line(&v.to_string());
        } else {
            line(human);
        }
    }

    pub fn error(&self, e: &Error) {
        if self.json {
            line(&json::error(e).to_string());
        } else {
            eprintln!("error: {e}");
        }
    }

    pub fn job(&self, j: &Job) {
        if self.json {
            line(&json::job(j).to_string());
            return;
        }
        let v = json::job(j);
        let mut s = String::new();
        if let Value::Object(m) = v {
            for (k, v) in m {
                let shown = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                s.push_str(&format!("{k:>14}: {shown}\n"));
            }
        }
        line(s.trim_end());
    }

    pub fn jobs(&self, jobs: &[Job]) {
        if self.json {
            let arr: Vec<Value> = jobs.iter().map(json::job).collect();
            line(&serde_json::json!({ "jobs": arr }).to_string());
            return;
        }
        if jobs.is_empty() {
            line("no jobs");
            return;
        }
        line(&format!(
            "{:<36}  {:<11}  {:<12}  {:<20}  {:>8}  {}",
            "ID", "STATUS", "QUEUE", "TYPE", "ATTEMPTS", "CREATED"
        ));
        for j in jobs {
            line(&format!(
                "{:<36}  {:<11}  {:<12}  {:<20}  {:>4}/{:<3}  {}",
                j.id.to_string(),
                j.status.as_str(),
                j.queue,
                j.kind,
                j.attempts,
                j.max_attempts,
                json::time(j.created_at)
            ));
        }
    }

    pub fn stats(&self, s: &Stats) {
        if self.json {
            line(&json::stats(s).to_string());
            return;
        }
        let row = |name: &str, c: &jobspool::Counts, paused: bool| {
            format!(
                "{:<16} {:>9} {:>9} {:>10} {:>8} {:>10} {:>10} {:>9}{}",
                name,
                c.pending,
                c.running,
                c.completed,
                c.failed,
                c.dead_letter,
                c.cancelled,
                c.delayed,
                if paused { "  (paused)" } else { "" }
            )
        };
        line(&format!(
            "{:<16} {:>9} {:>9} {:>10} {:>8} {:>10} {:>10} {:>9}",
            "QUEUE", "PENDING", "RUNNING", "COMPLETED", "FAILED", "DEAD", "CANCELLED", "DELAYED"
        ));
        for (name, q) in &s.queues {
            line(&row(name, &q.counts, q.paused));
        }
        line(&row("(all)", &s.total, false));
    }

    pub fn schedule(&self, s: &ScheduledJob) {
        if self.json {
            line(&json::schedule(s).to_string());
        } else {
            self.schedules(std::slice::from_ref(s));
        }
    }

    pub fn schedules(&self, list: &[ScheduledJob]) {
        if self.json {
            line(&json::schedules(list).to_string());
            return;
        }
        if list.is_empty() {
            line("no schedules");
            return;
        }
        line(&format!(
            "{:<20} {:<16} {:<16} {:<16} {:<8} {:<25} {}",
            "NAME", "CRON", "TIMEZONE", "JOB TYPE", "ENABLED", "NEXT RUN", "LAST RUN"
        ));
        for s in list {
            line(&format!(
                "{:<20} {:<16} {:<16} {:<16} {:<8} {:<25} {}",
                s.name,
                s.cron_expression,
                s.timezone,
                s.job_type,
                s.enabled,
                s.next_run_at.map_or_else(|| "-".into(), json::time),
                s.last_run_at.map_or_else(|| "-".into(), json::time)
            ));
        }
    }

    pub fn event(&self, ev: &EventRecord) {
        let v = json::event(ev);
        if self.json {
            line(&v.to_string());
            return;
        }
        let mut rest = String::new();
        if let Value::Object(m) = v {
            for (k, v) in m.into_iter().filter(|(k, _)| k != "seq" && k != "name") {
                let shown = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                rest.push_str(&format!(" {k}={shown}"));
            }
        }
        line(&format!("{:>8} {:<24}{rest}", ev.seq, ev.event.name()));
    }
}
