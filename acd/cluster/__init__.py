"""One routing authority, replicated by its log (issue 20): the pieces a cluster node is built from.

- `lease.py`: the pure leader-lease state machine (follower, candidate, leader), deadlines, fencing token.
- `wire.py`: the one wire format of routing-log payloads (events, decisions, entries) as JSON-able dicts.
- `snapshot.py`: an engine's state as a JSON-able dict and back (the log's snapshot entries).
- `routing_log.py`: the pure replica: applies log entries in order, detects gaps and stale epochs, replays.
- `pg_log.py`: the PostgreSQL shell: lease row, fenced appends, the inbox, tailing with LISTEN/NOTIFY.
- `node.py`: `ClusterNode`, the lease, the replica and the PostgreSQL log driven together (blocking).
- `membership.py`: the pure membership machine: heartbeats, incarnations, node deaths claimed once.
- `pg_members.py`: the PostgreSQL shell of membership (`cluster_nodes`) and its driver `ClusterMembers`.
- `node_loss.py`: `NodeLoss`, what a node does when another dies (records closed, calls ended).

Nothing here is wired into `acd serve` yet; the pure modules import no I/O.
"""
