//! `mqtrigger mappings …` and `mqtrigger instances`: a client of a running
//! instance's API, answering as a table or JSON.

use anyhow::Result;
use clap::{Subcommand, ValueEnum};

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum MappingsCommand {
    /// Every mapping (all pages), optionally of one function or broker.
    List {
        #[arg(long)]
        function_name: Option<String>,
        #[arg(long)]
        event_source_arn: Option<String>,
        /// Page size asked of the API.
        #[arg(long)]
        max_items: Option<i32>,
    },
    Get {
        uuid: String,
    },
    Create {
        #[arg(long)]
        function_name: String,
        #[arg(long)]
        event_source_arn: String,
        #[arg(long)]
        queue: String,
        /// The BASIC_AUTH secret's ARN.
        #[arg(long)]
        secret: String,
        /// RabbitMQ only.
        #[arg(long)]
        virtual_host: Option<String>,
        #[arg(long)]
        batch_size: Option<i32>,
        /// MaximumBatchingWindowInSeconds.
        #[arg(long)]
        batching_window: Option<i32>,
        /// A FilterCriteria pattern; repeat for several.
        #[arg(long = "filter-pattern")]
        filter_patterns: Vec<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
        /// FunctionResponseTypes ReportBatchItemFailures: the function may
        /// name the messages that failed, and only they are retried.
        #[arg(long)]
        report_batch_item_failures: bool,
    },
    Update {
        uuid: String,
        #[arg(long)]
        function_name: Option<String>,
        #[arg(long)]
        batch_size: Option<i32>,
        #[arg(long)]
        batching_window: Option<i32>,
        #[arg(long = "filter-pattern")]
        filter_patterns: Vec<String>,
        /// Remove the filters.
        #[arg(long, conflicts_with = "filter_patterns")]
        no_filter: bool,
        #[arg(long)]
        secret: Option<String>,
        /// Turn ReportBatchItemFailures on.
        #[arg(long, conflicts_with = "no_report_batch_item_failures")]
        report_batch_item_failures: bool,
        /// Turn ReportBatchItemFailures off.
        #[arg(long)]
        no_report_batch_item_failures: bool,
    },
    Delete {
        uuid: String,
    },
    Enable {
        uuid: String,
    },
    Disable {
        uuid: String,
    },
    /// mqtrigger's own: take no new batch; the broker keeps the messages.
    Pause {
        uuid: String,
    },
    /// mqtrigger's own: take batches again.
    Resume {
        uuid: String,
    },
    /// mqtrigger's own: let exactly one batch through, then paused again.
    Step {
        uuid: String,
    },
}

pub async fn mappings(endpoint: &str, output: Output, command: MappingsCommand) -> Result<()> {
    use mqtrigger::api::client::{self, Change, Request};
    if let MappingsCommand::Pause { uuid }
    | MappingsCommand::Resume { uuid }
    | MappingsCommand::Step { uuid } = &command
    {
        let what = match command {
            MappingsCommand::Pause { .. } => "pause",
            MappingsCommand::Resume { .. } => "resume",
            _ => "step",
        };
        return operate(endpoint, output, uuid, what).await;
    }
    let patterns = |p: Vec<String>, none: bool| match (p.is_empty(), none) {
        (_, true) => Some(Vec::new()),
        (true, false) => None,
        (false, false) => Some(p),
    };
    let request = match command {
        MappingsCommand::List {
            function_name,
            event_source_arn,
            max_items,
        } => Request::List {
            function_name,
            event_source_arn,
            max_items,
        },
        MappingsCommand::Get { uuid } => Request::Get(uuid),
        MappingsCommand::Create {
            function_name,
            event_source_arn,
            queue,
            secret,
            virtual_host,
            batch_size,
            batching_window,
            filter_patterns,
            disabled,
            report_batch_item_failures,
        } => Request::Create(Box::new(Change {
            function_name: Some(function_name),
            event_source_arn: Some(event_source_arn),
            queue: Some(queue),
            secret: Some(secret),
            virtual_host,
            batch_size,
            batching_window,
            filter_patterns: patterns(filter_patterns, false),
            enabled: Some(!disabled),
            report_item_failures: report_batch_item_failures.then_some(true),
        })),
        MappingsCommand::Update {
            uuid,
            function_name,
            batch_size,
            batching_window,
            filter_patterns,
            no_filter,
            secret,
            report_batch_item_failures,
            no_report_batch_item_failures,
        } => Request::Update(
            uuid,
            Box::new(Change {
                function_name,
                batch_size,
                batching_window,
                filter_patterns: patterns(filter_patterns, no_filter),
                secret,
                report_item_failures: match (
                    report_batch_item_failures,
                    no_report_batch_item_failures,
                ) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                ..Change::default()
            }),
        ),
        MappingsCommand::Delete { uuid } => Request::Delete(uuid),
        MappingsCommand::Enable { uuid } => Request::Enable(uuid),
        MappingsCommand::Disable { uuid } => Request::Disable(uuid),
        MappingsCommand::Pause { .. }
        | MappingsCommand::Resume { .. }
        | MappingsCommand::Step { .. } => unreachable!("answered above"),
    };
    let mut answer = client::run(endpoint, request).await?;
    if answer.get("EventSourceMappings").is_some() || answer.get("UUID").is_some() {
        // mqtrigger's own numbers beside Lambda's fields; an endpoint
        // that is Lambda itself has none.
        let remote = mqtrigger::api::remote::Remote::new(endpoint).await?;
        let all = match answer.get_mut("EventSourceMappings") {
            Some(serde_json::Value::Array(all)) => all.as_mut_slice(),
            _ => std::slice::from_mut(&mut answer),
        };
        match remote.stats().await {
            Ok(stats) => client::add_counts(all, &stats),
            Err(e) => eprintln!("(no counts: {e})"),
        }
        if let Ok(paused) = remote.paused().await {
            client::add_paused(all, &paused);
        }
    }
    let text = match (output, answer.get("EventSourceMappings")) {
        (Output::Json, _) => serde_json::to_string_pretty(&answer)? + "\n",
        (Output::Table, Some(all)) => {
            client::table(all.as_array().map(Vec::as_slice).unwrap_or_default())
        }
        (Output::Table, None) => client::table(std::slice::from_ref(&answer)),
    };
    print!("{text}");
    Ok(())
}

/// Pause, resume or step, through mqtrigger's own API (Lambda has none).
async fn operate(endpoint: &str, output: Output, uuid: &str, what: &str) -> Result<()> {
    let uuid: uuid::Uuid = uuid
        .parse()
        .map_err(|_| anyhow::anyhow!("{uuid} is not an event source mapping UUID"))?;
    let remote = mqtrigger::api::remote::Remote::new(endpoint).await?;
    let answer = serde_json::to_value(remote.operate(uuid, what).await?)?;
    let text = match output {
        Output::Json => serde_json::to_string_pretty(&answer)? + "\n",
        Output::Table => mqtrigger::api::client::table(std::slice::from_ref(&answer)),
    };
    print!("{text}");
    Ok(())
}

pub async fn instances(endpoint: &str, output: Output) -> Result<()> {
    let remote = mqtrigger::api::remote::Remote::new(endpoint).await?;
    let answer = remote.instances().await?;
    let text = match output {
        Output::Json => serde_json::to_string_pretty(&answer)? + "\n",
        Output::Table => mqtrigger::api::client::instances_table(&answer, chrono::Utc::now()),
    };
    print!("{text}");
    Ok(())
}
