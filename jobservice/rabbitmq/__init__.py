"""The RabbitMQ adapter: the connection that publishes task messages and results, and the
framing that writes a chunk of them to the socket at once."""
