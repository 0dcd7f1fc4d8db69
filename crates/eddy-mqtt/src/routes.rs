//! Topic-to-stream mapping: an ordered list of `FILTER=STREAM` routes and a default stream.
//! The first route whose MQTT topic filter matches a PUBLISH's topic names its stream;
//! a topic no route matches goes to the default stream.

use std::fmt;
use std::str::FromStr;

use crate::MqttError;

/// One `FILTER=STREAM` pair, e.g. `devices/+/telemetry=telemetry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// An MQTT topic filter (`+` matches one level, a final `#` any number).
    pub filter: String,
    /// The stream that receives the events of matching topics.
    pub stream: String,
}

impl FromStr for Route {
    type Err = MqttError;

    fn from_str(text: &str) -> Result<Route, MqttError> {
        let Some((filter, stream)) = text.rsplit_once('=') else {
            return Err(MqttError::Config(format!(
                "route {text:?} must be FILTER=STREAM, e.g. devices/+/telemetry=telemetry"
            )));
        };
        let route = Route {
            filter: filter.to_string(),
            stream: stream.to_string(),
        };
        route.validate()?;
        Ok(route)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}={}", self.filter, self.stream)
    }
}

impl Route {
    fn validate(&self) -> Result<(), MqttError> {
        if !crate::codec::valid_filter(&self.filter) {
            return Err(MqttError::Config(format!(
                "invalid topic filter {:?}: '+' and '#' must stand for whole levels, '#' last",
                self.filter
            )));
        }
        validate_stream(&self.stream)
    }
}

fn validate_stream(stream: &str) -> Result<(), MqttError> {
    eddy_log::validate_stream_name(stream)
        .map_err(|e| MqttError::Config(format!("mqtt target stream: {e}")))
}

/// Where each topic's events go; checked once, when the listener is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    routes: Vec<Route>,
    default_stream: String,
}

impl Routes {
    /// Builds the mapping; fails on an invalid filter or stream name.
    pub fn new(routes: Vec<Route>, default_stream: &str) -> Result<Routes, MqttError> {
        for route in &routes {
            route.validate()?;
        }
        validate_stream(default_stream)?;
        Ok(Routes {
            routes,
            default_stream: default_stream.to_string(),
        })
    }

    /// The stream that receives events published to `topic`.
    pub fn stream_for(&self, topic: &str) -> &str {
        self.routes
            .iter()
            .find(|r| matches(&r.filter, topic))
            .map_or(&self.default_stream, |r| &r.stream)
    }
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            routes: Vec::new(),
            default_stream: crate::DEFAULT_STREAM.to_string(),
        }
    }
}

/// MQTT filter matching; topics starting with `$` are matched by wildcards only when the
/// filter's first level names `$` explicitly, as the specification requires.
fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if topic_levels.next().is_none() {
                    return false;
                }
            }
            exact => {
                if topic_levels.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_levels() {
        assert!(matches("devices/+/telemetry", "devices/d1/telemetry"));
        assert!(!matches("devices/+/telemetry", "devices/d1/x/telemetry"));
        assert!(matches("devices/#", "devices"));
        assert!(matches("devices/#", "devices/a/b"));
        assert!(matches("#", "a/b"));
        assert!(!matches("#", "$SYS/x"));
        assert!(matches("a/+", "a/"));
        assert!(!matches("a/b", "a/b/c"));
    }

    #[test]
    fn first_matching_route_wins_else_default() {
        let routes = Routes::new(
            vec![
                "devices/+/alerts=alerts".parse().unwrap(),
                "devices/#=telemetry".parse().unwrap(),
            ],
            "devices",
        )
        .unwrap();
        assert_eq!(routes.stream_for("devices/d1/alerts"), "alerts");
        assert_eq!(routes.stream_for("devices/d1/alerts/x"), "telemetry");
        assert_eq!(routes.stream_for("other"), "devices");
    }

    #[test]
    fn bad_routes_are_refused() {
        assert!("no-equals".parse::<Route>().is_err());
        assert!("a/#/b=s".parse::<Route>().is_err());
        assert!("a/+=bad name".parse::<Route>().is_err());
        assert!(Routes::new(Vec::new(), "../x").is_err());
    }
}
