//! `triggers: [GLOB...]` and `sensors: [GLOB...]`: which instances a sink
//! takes. Globs are shell-style (`*`, `?`, `[abc]`), matched against the
//! trigger ref and the trigger type ref, and against the sensor ref.

use eventlog::TriggerInstance;

/// A sink's filters; empty lists take everything.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    triggers: Vec<glob::Pattern>,
    sensors: Vec<glob::Pattern>,
}

impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        let text =
            |v: &[glob::Pattern]| v.iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>();
        text(&self.triggers) == text(&other.triggers) && text(&self.sensors) == text(&other.sensors)
    }
}

/// A glob that does not parse, with its position.
#[derive(Debug, thiserror::Error)]
#[error("'{glob}' is not a valid glob: {reason}")]
pub struct BadGlob {
    /// The glob as written.
    pub glob: String,
    /// Why.
    pub reason: String,
}

fn compile(globs: &[String]) -> Result<Vec<glob::Pattern>, BadGlob> {
    globs
        .iter()
        .map(|g| {
            glob::Pattern::new(g).map_err(|e| BadGlob {
                glob: g.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

impl Selector {
    /// Filters from the configured globs.
    pub fn new(triggers: &[String], sensors: &[String]) -> Result<Selector, BadGlob> {
        Ok(Selector {
            triggers: compile(triggers)?,
            sensors: compile(sensors)?,
        })
    }

    /// Whether the sink takes this instance.
    pub fn selects(&self, i: &TriggerInstance) -> bool {
        self.selects_refs(&i.trigger, &i.trigger_type, i.sensor.as_deref())
    }

    /// [`Selector::selects`] on the refs alone. An instance without a
    /// sensor (webhooks, internal triggers) passes a sensor filter only
    /// if a glob matches the empty string (e.g. `*`).
    pub fn selects_refs(&self, trigger: &str, trigger_type: &str, sensor: Option<&str>) -> bool {
        let trig = self.triggers.is_empty()
            || self
                .triggers
                .iter()
                .any(|p| p.matches(trigger) || p.matches(trigger_type));
        let sens =
            self.sensors.is_empty() || self.sensors.iter().any(|p| p.matches(sensor.unwrap_or("")));
        trig && sens
    }

    /// The trigger globs as written.
    pub fn triggers(&self) -> Vec<String> {
        self.triggers
            .iter()
            .map(|p| p.as_str().to_string())
            .collect()
    }

    /// The sensor globs as written.
    pub fn sensors(&self) -> Vec<String> {
        self.sensors
            .iter()
            .map(|p| p.as_str().to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_trigger_or_type_and_sensor() {
        let s = Selector::new(&["examples.*".into(), "core.st2.webhook".into()], &[]).unwrap();
        assert!(s.selects_refs("examples.event", "examples.event", Some("examples.S")));
        assert!(s.selects_refs("core.1234", "core.st2.webhook", None));
        assert!(!s.selects_refs("other.event", "other.event", None));
        let s = Selector::new(&[], &["examples.Hello*".into()]).unwrap();
        assert!(s.selects_refs("a.b", "a.b", Some("examples.HelloSensor")));
        assert!(!s.selects_refs("a.b", "a.b", None));
        assert!(Selector::new(&["[".into()], &[]).is_err());
        assert_eq!(
            Selector::new(&["a.*".into()], &[]).unwrap(),
            Selector::new(&["a.*".into()], &[]).unwrap()
        );
    }
}
