//! Warnings and infos returned beside a query result, rendered as Prometheus renders them
//! (`PromQL warning: … (line:col)`).

use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Info,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Annotation {
    pub severity: Severity,
    /// The message without the `PromQL warning: ` prefix and position.
    pub message: String,
    /// 1-based line and column of the expression the annotation is about, when known.
    pub position: Option<(usize, usize)>,
}

impl std::fmt::Display for Annotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = match self.severity {
            Severity::Warning => "PromQL warning: ",
            Severity::Info => "PromQL info: ",
        };
        write!(f, "{prefix}{}", self.message)?;
        if let Some((l, c)) = self.position {
            write!(f, " ({l}:{c})")?;
        }
        Ok(())
    }
}

/// A deduplicated set of annotations.
#[derive(Clone, Debug, Default)]
pub struct Annotations {
    set: BTreeSet<Annotation>,
}

impl Annotations {
    pub fn add(&mut self, a: Annotation) {
        self.set.insert(a);
    }

    pub fn warn(&mut self, message: impl Into<String>, position: Option<(usize, usize)>) {
        self.add(Annotation {
            severity: Severity::Warning,
            message: message.into(),
            position,
        });
    }

    pub fn info(&mut self, message: impl Into<String>, position: Option<(usize, usize)>) {
        self.add(Annotation {
            severity: Severity::Info,
            message: message.into(),
            position,
        });
    }

    pub fn merge(&mut self, other: Annotations) {
        self.set.extend(other.set);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Annotation> {
        self.set.iter()
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Annotation> {
        self.set.iter().filter(|a| a.severity == Severity::Warning)
    }

    pub fn infos(&self) -> impl Iterator<Item = &Annotation> {
        self.set.iter().filter(|a| a.severity == Severity::Info)
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}
