"""Tamper-evident audit log: append-only, keyed, hash-chained, its head anchored outside the database.

Why keyed: an unkeyed SHA-256 chain can be rewritten end to end by anyone who can write the
table (a database superuser edits one event and recomputes every later hash and the head). Each
event's hash is therefore an HMAC-SHA256 under the *audit key*, a purpose-bound subkey of the
secrets backend's HMAC key (:meth:`SecretsBackend.audit_key`), over the canonical JSON of
``(seq, ts, kind, refresh_id, actor, payload, prev_hash, key_id)``. Each event names its key
(``key_id`` = the backend's key version and a short fingerprint of the audit key, never the key).
Without a key nothing is written: there is no unkeyed fallback.

Why anchored: a chain whose head lives in the same database can still be rewound (delete the
newest events, restore an older head) or wiped. After every append the head (seq + MAC), itself
MAC-signed, is written outside the database: ``<workdir>/audit/anchor-<database>.json`` and, while
the event's refresh is unpublished, ``<store>/<refresh_id>/audit-anchor.json`` (so the refresh's
signed manifest hashes it and the artifact store publishes it). :func:`verify_chain` checks every
MAC and link, and that each anchored event is still in the log with the anchored MAC; an append
refuses to continue a log that contradicts its anchor.

Who signs: callers pass an :class:`AuditSigner` (secrets backend, work directory, store), or a
process binds one to the audit database once (:func:`bind_audit_log`, done by the Dagster resource
and the CLI) so that core code that only knows a URL or a connection (the loader, teardown,
release) signs with the configured key.

Events written before the log was keyed (``key_id`` NULL) verify as legacy SHA-256 events while
they form a prefix of the log (the first keyed event seals them); an unkeyed event after a keyed
one is tampering. Ordinary roles cannot change history: UPDATE/DELETE/TRUNCATE are revoked from
PUBLIC and refused by triggers; a superuser can bypass both, which the MACs and anchors detect.

One module per concern: ``keys`` (audit keys, signers, the signers bound in this process),
``events`` (kinds, the fields hashed and MAC'd, canonical bytes), ``log`` (the schema, appending,
anchoring the head, reading rows), ``anchors`` (the head outside the database), ``verify``
(:func:`verify_chain`), ``show`` (listing and formatting events) and ``payloads`` (what each
stage records).
"""

from .anchors import ANCHOR_FORMAT, Anchor, read_anchor
from .errors import AuditChainBroken, AuditError, AuditKeyUnavailable
from .events import (
    AUDIT_SCHEMA,
    EVENT_KINDS,
    GENESIS_HASH,
    AuditEvent,
    EventFields,
    canonical_payload,
    default_actor,
    event_hash,
    event_mac,
)
from .keys import ANCHOR_DIR, REFRESH_ANCHOR, AuditKey, AuditSigner, bind_audit_log, bound_signer
from .log import anchor_head, append_event, database_identity, ensure_audit_schema, record_event
from .payloads import (
    profile_payload,
    refusal_payload,
    report_payload,
    reservation_payload,
    shards_payload,
    spec_payload,
)
from .show import format_event, list_events
from .verify import VerifyResult, verify_chain

__all__ = [
    "ANCHOR_DIR",
    "ANCHOR_FORMAT",
    "AUDIT_SCHEMA",
    "EVENT_KINDS",
    "GENESIS_HASH",
    "REFRESH_ANCHOR",
    "Anchor",
    "AuditChainBroken",
    "AuditError",
    "AuditEvent",
    "AuditKey",
    "AuditKeyUnavailable",
    "AuditSigner",
    "EventFields",
    "VerifyResult",
    "anchor_head",
    "append_event",
    "bind_audit_log",
    "bound_signer",
    "canonical_payload",
    "database_identity",
    "default_actor",
    "ensure_audit_schema",
    "event_hash",
    "event_mac",
    "format_event",
    "list_events",
    "profile_payload",
    "read_anchor",
    "record_event",
    "refusal_payload",
    "report_payload",
    "reservation_payload",
    "shards_payload",
    "spec_payload",
    "verify_chain",
]
