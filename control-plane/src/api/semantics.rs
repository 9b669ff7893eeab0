//! Rules the model cannot express: overlapping bandwidth intervals, one maintenance day kind,
//! the property-mapping limit, reserved tag keys.

use bgw_scheduler::bandwidth::{BandwidthSchedule, Interval};
use bgw_scheduler::maintenance::MaintenanceStartTime;
use serde::Deserialize;

use super::error::ApiError;
use crate::store::{BandwidthInterval, MaintenanceTime, Tags};

/// At most this many VMware-to-AWS tag mappings per hypervisor.
pub const MAX_PROPERTY_MAPPINGS: usize = 10;
/// At most this many tags per resource.
pub const MAX_TAGS: usize = 50;

/// A tag as the API carries it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagInput {
    pub key: String,
    pub value: String,
}

/// Checks tags (reserved prefix, count, duplicates) and returns them as a map.
pub fn tags(field: &str, input: &[TagInput]) -> Result<Tags, ApiError> {
    let mut tags = Tags::new();
    for (i, tag) in input.iter().enumerate() {
        if tag.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::validation(format!(
                "{field}[{i}].Key {:?}: tag keys starting with \"aws:\" are reserved for AWS use",
                tag.key
            )));
        }
        if tags.insert(tag.key.clone(), tag.value.clone()).is_some() {
            return Err(ApiError::validation(format!(
                "{field}[{i}].Key {:?} appears more than once",
                tag.key
            )));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::validation(format!(
            "{field}: at most {MAX_TAGS} tags are allowed per resource ({} given)",
            tags.len()
        )));
    }
    Ok(tags)
}

/// Checks tag keys given for removal (the reserved prefix cannot be managed either).
pub fn tag_keys(keys: &[String]) -> Result<(), ApiError> {
    for (i, key) in keys.iter().enumerate() {
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::validation(format!(
                "TagKeys[{i}] {key:?}: tag keys starting with \"aws:\" are reserved for AWS use"
            )));
        }
    }
    Ok(())
}

pub fn property_mapping_count(count: usize) -> Result<(), ApiError> {
    if count > MAX_PROPERTY_MAPPINGS {
        return Err(ApiError::validation(format!(
            "VmwareToAwsTagMappings: at most {MAX_PROPERTY_MAPPINGS} mappings are allowed per hypervisor ({count} given)"
        )));
    }
    Ok(())
}

/// Validates a bandwidth schedule with the scheduler's own rules (the ones the gateway
/// enforces), so the cloud never accepts a schedule a gateway would refuse.
pub fn bandwidth(intervals: &[BandwidthInterval]) -> Result<(), ApiError> {
    let converted = intervals
        .iter()
        .map(|i| Interval {
            days_of_week: i.days_of_week.clone(),
            start_hour: i.start_hour_of_day,
            start_minute: i.start_minute_of_hour,
            end_hour: i.end_hour_of_day,
            end_minute: i.end_minute_of_hour,
            average_upload_rate_limit_bps: i.average_upload_rate_limit_bits_per_sec,
        })
        .collect();
    BandwidthSchedule::new(converted)
        .map(|_| ())
        .map_err(|e| ApiError::validation(format!("BandwidthRateLimitIntervals: {e}")))
}

/// Validates a maintenance start time: hour and minute plus exactly one of the day fields.
pub fn maintenance(
    hour: i64,
    minute: i64,
    day_of_week: Option<i64>,
    day_of_month: Option<i64>,
) -> Result<MaintenanceTime, ApiError> {
    let start =
        MaintenanceStartTime::from_parts(day_of_week, day_of_month, Some(hour), Some(minute))
            .map_err(|e| ApiError::validation(e.to_string()))?;
    Ok(match start {
        MaintenanceStartTime::Weekly {
            day_of_week,
            hour,
            minute,
        } => MaintenanceTime {
            hour_of_day: hour,
            minute_of_hour: minute,
            day_of_week: Some(day_of_week),
            day_of_month: None,
        },
        MaintenanceStartTime::Monthly {
            day_of_month,
            hour,
            minute,
        } => MaintenanceTime {
            hour_of_day: hour,
            minute_of_hour: minute,
            day_of_week: None,
            day_of_month: Some(day_of_month),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(days: &[u8], sh: u8, sm: u8, eh: u8, em: u8) -> BandwidthInterval {
        BandwidthInterval {
            average_upload_rate_limit_bits_per_sec: Some(102_400),
            start_hour_of_day: sh,
            start_minute_of_hour: sm,
            end_hour_of_day: eh,
            end_minute_of_hour: em,
            days_of_week: days.to_vec(),
        }
    }

    #[test]
    fn overlapping_intervals_are_refused() {
        bandwidth(&[iv(&[1], 0, 0, 8, 59), iv(&[1], 9, 0, 17, 59)]).unwrap();
        // 8:59 runs to the end of that minute, so 8:59 in the next interval overlaps.
        let err = bandwidth(&[iv(&[1], 0, 0, 8, 59), iv(&[1, 2], 8, 59, 17, 0)]).unwrap_err();
        assert!(err.message.contains("interval 1"), "{}", err.message);
        assert!(bandwidth(&[iv(&[1], 9, 0, 8, 0)]).is_err());
    }

    #[test]
    fn maintenance_needs_exactly_one_day_kind() {
        assert!(maintenance(1, 0, None, None).is_err());
        assert!(maintenance(1, 0, Some(1), Some(1)).is_err());
        assert_eq!(
            maintenance(1, 30, Some(6), None).unwrap().day_of_week,
            Some(6)
        );
        assert_eq!(
            maintenance(1, 30, None, Some(28)).unwrap().day_of_month,
            Some(28)
        );
    }

    #[test]
    fn reserved_and_duplicate_tag_keys() {
        let t = |k: &str| TagInput {
            key: k.into(),
            value: "v".into(),
        };
        assert!(tags("Tags", &[t("aws:owner")]).is_err());
        assert!(tags("Tags", &[t("a"), t("a")]).is_err());
        assert_eq!(tags("Tags", &[t("a"), t("b")]).unwrap().len(), 2);
        assert!(property_mapping_count(11).is_err());
    }
}
