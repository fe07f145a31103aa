//! StackStorm's own bus (issue 16, in progress): trigger instances onto
//! RabbitMQ exchange `<prefix>.trigger_instances_dispatch`, routing key
//! `trigger_instance`, as st2's rules engine reads them. So far: the
//! message body ([`message`]); the AMQP publisher with confirms is next.

pub mod message;
