//! [`Scheduler`] over Amazon EventBridge Scheduler: each scheduled call is a one-time
//! schedule (`at(…)` in UTC, deleted once it has run) in the stack's schedule group, whose
//! target is the plugin's own function with the call's tool-call event as its input. The
//! scheduler assumes the stack's scheduler role to invoke it.

use async_trait::async_trait;
use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target,
};
use aws_types::SdkConfig;
use switchboard::Error;
use switchboard::ports::Scheduler;
use switchboard::schedule::{DeferredCall, already_scheduled};
use switchboard::settings::SchedulerSettings;

/// A client whose whole operation (3 s) ends inside a call's budget.
pub fn client_from_config(sdk: &SdkConfig) -> Client {
    let (timeouts, retries) = crate::within_a_call();
    let conf = aws_sdk_scheduler::config::Builder::from(sdk)
        .timeout_config(timeouts)
        .retry_config(retries)
        .build();
    Client::from_conf(conf)
}

/// How often the scheduler retries a failed delivery, and for how long: a reminder an hour
/// late is worse than none.
const DELIVERY_ATTEMPTS: i32 = 3;
const DELIVERY_MAX_AGE_SECS: i32 = 3600;

#[derive(Clone, Debug)]
pub struct EventBridgeScheduler {
    client: Client,
    settings: SchedulerSettings,
}

impl EventBridgeScheduler {
    pub fn new(client: Client, settings: SchedulerSettings) -> Self {
        Self { client, settings }
    }
}

fn error<E>(op: &str, err: &SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("unknown");
            let status = s.raw().status().as_u16();
            Error::Unavailable(format!(
                "EventBridge Scheduler {op}: {code} (HTTP {status})"
            ))
        }
        other => Error::Unavailable(format!(
            "EventBridge Scheduler {op}: {}",
            DisplayErrorContext(other)
        )),
    }
}

/// `at(yyyy-mm-ddThh:mm:ss)`, in the schedule's time zone (UTC here).
fn at_expression(at: i64) -> Result<String, Error> {
    let t = jiff::Timestamp::from_second(at)
        .map_err(|_| Error::unprocessable("the time is out of range"))?;
    Ok(format!("at({})", t.strftime("%Y-%m-%dT%H:%M:%S")))
}

#[async_trait]
impl Scheduler for EventBridgeScheduler {
    async fn create(&self, call: &DeferredCall) -> Result<(), Error> {
        let input = serde_json::to_string(&call.event)
            .map_err(|e| Error::internal(format!("a scheduled call's event: {e}")))?;
        let target = Target::builder()
            .arn(&self.settings.target_arn)
            .role_arn(&self.settings.role_arn)
            .input(input)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(DELIVERY_ATTEMPTS)
                    .maximum_event_age_in_seconds(DELIVERY_MAX_AGE_SECS)
                    .build(),
            )
            .build()
            .map_err(|e| Error::internal(format!("a schedule's target: {e}")))?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| Error::internal(format!("a schedule's time window: {e}")))?;
        let out = self
            .client
            .create_schedule()
            .name(&call.name)
            .group_name(&self.settings.group)
            .schedule_expression(at_expression(call.at)?)
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target)
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConflictException") => Err(already_scheduled()),
            Err(e) => Err(error("CreateSchedule", &e)),
        }
    }

    async fn delete(&self, name: &str) -> Result<bool, Error> {
        let out = self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.settings.group)
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(false),
            Err(e) => Err(error("DeleteSchedule", &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_expressions_are_utc_to_the_second() {
        assert_eq!(
            at_expression(1_811_775_600).unwrap(),
            "at(2027-05-31T15:00:00)"
        );
    }
}
