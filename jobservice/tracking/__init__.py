"""The tracking side: the consumer of the tracking pipe, how it reads reports, gathers them per
batch, records them in their workflows and acks their messages, and the pipe's length."""
