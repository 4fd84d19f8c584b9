//! UWS 1.1 documents (the job list, a job, its results and parameters) for
//! TAP's asynchronous queries. The jobs themselves are wisecut's ordinary
//! persistent jobs (`jobs`, `catalog::job_records`); this module only says
//! how one looks to a UWS client (pyvo, TOPCAT, `stilts taplint`).
//!
//! Phases map onto job states: a job created without `PHASE=RUN` is
//! PENDING until it is started, queued is QUEUED, running EXECUTING, done
//! COMPLETED, failed ERROR, aborted ABORTED; a job whose files retention
//! removed is ARCHIVED (UWS 1.1: results gone, record kept).

use super::votable::escape;

/// The UWS namespace.
pub const NAMESPACE: &str = "http://www.ivoa.net/xml/UWS/v1.0";

/// A UWS execution phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Created; waits for `PHASE=RUN`.
    Pending,
    /// Waiting for a worker.
    Queued,
    /// Running.
    Executing,
    /// Finished; results available.
    Completed,
    /// Failed; the error document says why.
    Error,
    /// Stopped by its client.
    Aborted,
    /// Finished, results removed by retention.
    Archived,
}

impl Phase {
    /// The phase's name as UWS writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Queued => "QUEUED",
            Self::Executing => "EXECUTING",
            Self::Completed => "COMPLETED",
            Self::Error => "ERROR",
            Self::Aborted => "ABORTED",
            Self::Archived => "ARCHIVED",
        }
    }

    /// Whether the job will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Error | Self::Aborted | Self::Archived
        )
    }
}

/// What a UWS client sees of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    /// The job id (as in its URL).
    pub id: String,
    /// The client's RUNID.
    pub run_id: Option<String>,
    /// Its phase.
    pub phase: Phase,
    /// ISO 8601 times.
    pub creation: String,
    /// When it started.
    pub start: Option<String>,
    /// When it ended.
    pub end: Option<String>,
    /// Seconds a run may last (0: no limit).
    pub execution_duration: u64,
    /// When the job will be destroyed.
    pub destruction: Option<String>,
    /// Its parameters (name, value).
    pub parameters: Vec<(String, String)>,
    /// Result ids and their absolute URLs.
    pub results: Vec<(String, String)>,
    /// Why it failed.
    pub error: Option<String>,
}

fn nil(out: &mut String, tag: &str, value: Option<&str>) {
    match value {
        Some(v) => out.push_str(&format!("<uws:{tag}>{}</uws:{tag}>\n", escape(v))),
        None => out.push_str(&format!("<uws:{tag} xsi:nil=\"true\"/>\n")),
    }
}

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn namespaces() -> String {
    format!(
        "xmlns:uws=\"{NAMESPACE}\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" version=\"1.1\""
    )
}

/// The `<uws:results>` element (also served alone at `…/results`).
fn results_element(out: &mut String, results: &[(String, String)], root: bool) {
    if root {
        out.push_str(&format!("<uws:results {}>\n", namespaces()));
    } else {
        out.push_str("<uws:results>\n");
    }
    for (id, href) in results {
        out.push_str(&format!(
            "<uws:result id=\"{}\" xlink:type=\"simple\" xlink:href=\"{}\" mime-type=\"application/x-votable+xml\"/>\n",
            escape(id),
            escape(href)
        ));
    }
    out.push_str("</uws:results>\n");
}

fn parameters_element(out: &mut String, parameters: &[(String, String)], root: bool) {
    if root {
        out.push_str(&format!("<uws:parameters {}>\n", namespaces()));
    } else {
        out.push_str("<uws:parameters>\n");
    }
    for (k, v) in parameters {
        out.push_str(&format!(
            "<uws:parameter id=\"{}\">{}</uws:parameter>\n",
            escape(k),
            escape(v)
        ));
    }
    out.push_str("</uws:parameters>\n");
}

/// The job document, elements in the order of the UWS 1.1 schema.
pub fn job_xml(j: &JobView) -> String {
    let mut out = String::from(HEAD);
    out.push_str(&format!("<uws:job {}>\n", namespaces()));
    out.push_str(&format!("<uws:jobId>{}</uws:jobId>\n", escape(&j.id)));
    if let Some(r) = &j.run_id {
        out.push_str(&format!("<uws:runId>{}</uws:runId>\n", escape(r)));
    }
    nil(&mut out, "ownerId", None);
    out.push_str(&format!("<uws:phase>{}</uws:phase>\n", j.phase.name()));
    nil(&mut out, "quote", None);
    out.push_str(&format!(
        "<uws:creationTime>{}</uws:creationTime>\n",
        escape(&j.creation)
    ));
    nil(&mut out, "startTime", j.start.as_deref());
    nil(&mut out, "endTime", j.end.as_deref());
    out.push_str(&format!(
        "<uws:executionDuration>{}</uws:executionDuration>\n",
        j.execution_duration
    ));
    nil(&mut out, "destruction", j.destruction.as_deref());
    parameters_element(&mut out, &j.parameters, false);
    results_element(&mut out, &j.results, false);
    if let Some(e) = &j.error {
        out.push_str(&format!(
            "<uws:errorSummary type=\"fatal\" hasDetail=\"true\">\n<uws:message>{}</uws:message>\n</uws:errorSummary>\n",
            escape(e)
        ));
    }
    out.push_str("</uws:job>\n");
    out
}

/// The results list on its own.
pub fn results_xml(results: &[(String, String)]) -> String {
    let mut out = String::from(HEAD);
    results_element(&mut out, results, true);
    out
}

/// The parameter list on its own.
pub fn parameters_xml(parameters: &[(String, String)]) -> String {
    let mut out = String::from(HEAD);
    parameters_element(&mut out, parameters, true);
    out
}

/// One line of the job list.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRef {
    /// Job id.
    pub id: String,
    /// Its absolute URL.
    pub href: String,
    /// Its phase.
    pub phase: Phase,
    /// The client's RUNID.
    pub run_id: Option<String>,
    /// ISO 8601 creation time.
    pub creation: String,
}

/// The job list.
pub fn jobs_xml(jobs: &[JobRef]) -> String {
    let mut out = String::from(HEAD);
    out.push_str(&format!("<uws:jobs {}>\n", namespaces()));
    for j in jobs {
        out.push_str(&format!(
            "<uws:jobref id=\"{}\" xlink:type=\"simple\" xlink:href=\"{}\">\n<uws:phase>{}</uws:phase>\n",
            escape(&j.id),
            escape(&j.href),
            j.phase.name()
        ));
        if let Some(r) = &j.run_id {
            out.push_str(&format!("<uws:runId>{}</uws:runId>\n", escape(r)));
        }
        nil(&mut out, "ownerId", None);
        out.push_str(&format!(
            "<uws:creationTime>{}</uws:creationTime>\n</uws:jobref>\n",
            escape(&j.creation)
        ));
    }
    out.push_str("</uws:jobs>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(phase: Phase) -> JobView {
        JobView {
            id: "7".into(),
            run_id: Some("r<1>".into()),
            phase,
            creation: "2026-12-03T10:00:00Z".into(),
            start: None,
            end: None,
            execution_duration: 600,
            destruction: Some("2026-12-10T10:00:00Z".into()),
            parameters: vec![("QUERY".into(), "SELECT a < b".into())],
            results: vec![],
            error: None,
        }
    }

    #[test]
    fn job_documents_follow_the_schema_order_and_escape_values() {
        let x = job_xml(&view(Phase::Pending));
        let order = [
            "<uws:jobId>",
            "<uws:runId>",
            "<uws:ownerId",
            "<uws:phase>PENDING",
            "<uws:quote",
            "<uws:creationTime>",
            "<uws:startTime xsi:nil",
            "<uws:endTime xsi:nil",
            "<uws:executionDuration>600",
            "<uws:destruction>",
            "<uws:parameters>",
            "<uws:results>",
        ];
        let mut at = 0;
        for tag in order {
            let i = x[at..]
                .find(tag)
                .unwrap_or_else(|| panic!("{tag} after {at}: {x}"));
            at += i;
        }
        assert!(x.contains("SELECT a &lt; b") && x.contains("r&lt;1&gt;"));
        assert!(!x.contains("errorSummary"));
        let mut failed = view(Phase::Error);
        failed.error = Some("bad & wrong".into());
        assert!(job_xml(&failed).contains("<uws:message>bad &amp; wrong</uws:message>"));
    }

    #[test]
    fn final_phases_are_those_that_never_change() {
        assert!(!Phase::Pending.is_final() && !Phase::Executing.is_final());
        assert!(Phase::Completed.is_final() && Phase::Aborted.is_final());
    }
}
