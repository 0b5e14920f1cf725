//! How the job reaches Kafka: the bootstrap servers and the user's librdkafka settings, shared by every client
//! the job opens (the source's consumers, the dead-letter and sink producers, the committer's offsets).

/// The Kafka cluster and the librdkafka settings of every client of the job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaClient {
    /// Bootstrap servers (`--brokers`).
    pub brokers: String,
    /// Extra librdkafka settings (`--kafka-option`), applied after each client's own defaults.
    pub options: Vec<(String, String)>,
}

impl KafkaClient {
    /// A librdkafka client configuration for the brokers with `defaults` set first and every user option after
    /// them, so the user's settings win.
    pub fn config(&self, defaults: &[(&str, &str)]) -> rdkafka::ClientConfig {
        let mut client = rdkafka::ClientConfig::new();
        client.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            client.set(*k, *v);
        }
        for (k, v) in &self.options {
            client.set(k, v);
        }
        client
    }

    /// The message prefix of a client that could not be configured.
    pub fn invalid(&self) -> String {
        format!("invalid Kafka settings (--brokers {}, --kafka-option)", self.brokers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_options_override_the_client_defaults() {
        let client = KafkaClient {
            brokers: "b:9092".into(),
            options: vec![
                ("queued.min.messages".into(), "5".into()),
                ("client.rack".into(), "r1".into()),
            ],
        };
        let config = client.config(&[("queued.min.messages", "20000")]);
        assert_eq!(config.get("queued.min.messages"), Some("5"));
        assert_eq!(config.get("client.rack"), Some("r1"));
        assert_eq!(config.get("bootstrap.servers"), Some("b:9092"));
    }
}
