//! The demo's rolling deploy of `web`: each running task replaced in turn, as ECS deploys do
//! (the new task running first, then the old one's desiredStatus STOPPED, then STOPPED).

use super::{Kind, Simulator};

/// One step of a rolling deploy of `web`, by task id (indexes move as tasks come and go).
pub(super) enum DeployStep {
    /// A new `web` task, running and healthy.
    Start,
    /// The old task's desiredStatus turns STOPPED (ECS sends SIGTERM now).
    Stop(String),
    /// The old task has stopped.
    Retire(String),
}

impl Simulator {
    /// Queues a rolling deploy of `web`: each running task replaced in turn, one step per
    /// [`Simulator::tick`]. Returns the ids of the tasks it replaces (none while one runs).
    pub fn start_rolling_deploy(&mut self) -> Vec<String> {
        if self.deploying() {
            return Vec::new();
        }
        let old: Vec<String> = self
            .tasks
            .iter()
            .filter(|t| t.kind == Kind::Web && t.desired == "RUNNING")
            .map(|t| t.id.clone())
            .collect();
        // A deploy rolls out the next revision.
        self.web_revision += 1;
        let mut previous: Option<String> = None;
        for id in &old {
            if let Some(done) = previous.take() {
                self.deploy.push_back(DeployStep::Retire(done));
            }
            self.deploy.push_back(DeployStep::Start);
            self.deploy.push_back(DeployStep::Stop(id.clone()));
            previous = Some(id.clone());
        }
        if let Some(done) = previous {
            self.deploy.push_back(DeployStep::Retire(done));
        }
        old
    }

    /// Whether a rolling deploy is under way.
    pub fn deploying(&self) -> bool {
        !self.deploy.is_empty()
    }

    /// The next deploy events, once no churn step is half done.
    pub(super) fn deploy_step(&mut self) -> Option<Vec<String>> {
        if self.pending.is_some() || self.deploy.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        // A retirement and the next start go together (ECS starts the next while one stops).
        while let Some(step) = self.deploy.pop_front() {
            match step {
                DeployStep::Start => {
                    let slot = self.rng.below(60);
                    let fresh = self.new_task(Kind::Web, slot, "RUNNING", "HEALTHY");
                    out.push(self.task_event(&fresh));
                    self.tasks.push(fresh);
                    return Some(out);
                }
                DeployStep::Stop(id) => {
                    if let Some(i) = self.tasks.iter().position(|t| t.id == id) {
                        let health = self.tasks[i].health;
                        out.push(self.bump(i, "RUNNING", "STOPPED", health));
                    }
                    return Some(out);
                }
                DeployStep::Retire(id) => {
                    if let Some(i) = self.tasks.iter().position(|t| t.id == id) {
                        let health = self.tasks[i].health;
                        out.push(self.bump(i, "STOPPED", "STOPPED", health));
                        self.tasks.swap_remove(i);
                    }
                }
            }
        }
        Some(out)
    }
}
