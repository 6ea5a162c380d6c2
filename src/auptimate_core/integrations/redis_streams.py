"""Many workers, one truth: transactions through Redis Streams, alerts logged exactly once.

A :class:`StreamProducer` appends transactions to a stream split into shards by pool
(``<stream>:<shard>``, the shard a hash of the pool id), so that every transaction of one pool
goes through one shard in the order it was sent. :class:`StreamWorker` processes runs of those
shards: each shard is leased to one worker at a time, read through a consumer group, fed to an
:class:`~auptimate_core.alerts.AlertEngine` on a shared store (the Redis store), and
acknowledged only after its alerts are in the alert log. Because a pool's transactions are
decided in order by one worker at a time, many workers raise exactly the alerts one engine
would raise on the whole stream.

Keys, for a stream named ``S``::

    S:<shard>            STREAM  transactions of the pools hashed to that shard
    S:config             HASH    shards (fixed when the first producer or worker starts)
    S:lease:<shard>      STRING  the consumer that holds the shard, with a time to live
    S:workers            ZSET    consumer -> last heartbeat (ms), to share the shards fairly
    {S}:alerts           STREAM  the alert log: every alert once, as JSON
    {S}:alert:<key>      STRING  marks an alert key as logged (kept for ``alert_memory``)
    S:rejected           STREAM  entries that could not be read
    S:late               STREAM  transactions kept out of the windows (late, or ahead of the
                                 clock); their threshold alerts were raised all the same

Failures: a worker that dies (even SIGKILL) stops renewing its leases; when they expire the
others take its shards and claim its unacknowledged entries (XAUTOCLAIM). Those are decided
again under the same delivery names: the store counts them once, the engine raises again the
alerts they caused, and the alert log keeps each alert key once. Alerts reach a worker's own
sinks after they are logged, so a sink sees each alert at most once per worker; read the alert
log (:func:`read_alerts`, or a consumer group of your own on it) for at-least-once delivery
with the alert key as idempotency key.

A worker that stalls longer than its lease while another has taken its shard may process the
same entries twice: counts stay exact (idempotent ids) and the log keeps each alert once.

Thread safety: a producer may be shared; a worker runs in one thread (stop it from another
with :meth:`StreamWorker.stop`).

Where each part lives: the shard layout and the entry format in
:mod:`~auptimate_core.integrations.stream_shards`, the producer in
:mod:`~auptimate_core.integrations.stream_producer`, the worker, its slices and the group's lag
in :mod:`~auptimate_core.integrations.stream_worker`, the alert log in
:mod:`~auptimate_core.integrations.alert_log`. Every name is importable from this module too.
"""

from __future__ import annotations

from .alert_log import read_alerts as read_alerts
from .stream_producer import StreamProducer as StreamProducer
from .stream_shards import DEFAULT_STREAM as DEFAULT_STREAM
from .stream_shards import decode as decode
from .stream_shards import encode as encode
from .stream_shards import shard_of as shard_of
from .stream_shards import shard_stream as shard_stream
from .stream_worker import Lag as Lag
from .stream_worker import StreamWorker as StreamWorker
from .stream_worker import lag as lag
from .stream_worker import run_worker as run_worker
from .stream_worker import slices as slices
