from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateKeyRequest(_message.Message):
    __slots__ = ("scheme", "threshold", "parties", "owner_tenant")
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    OWNER_TENANT_FIELD_NUMBER: _ClassVar[int]
    scheme: str
    threshold: int
    parties: int
    owner_tenant: str
    def __init__(self, scheme: _Optional[str] = ..., threshold: _Optional[int] = ..., parties: _Optional[int] = ..., owner_tenant: _Optional[str] = ...) -> None: ...

class KeyInfo(_message.Message):
    __slots__ = ("key_id", "scheme", "public_key", "threshold", "parties", "chain_code", "generation", "path", "xpub", "tenant", "holder_parties", "holders", "org", "owner_tenant")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    CHAIN_CODE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    XPUB_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    HOLDER_PARTIES_FIELD_NUMBER: _ClassVar[int]
    HOLDERS_FIELD_NUMBER: _ClassVar[int]
    ORG_FIELD_NUMBER: _ClassVar[int]
    OWNER_TENANT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    scheme: str
    public_key: bytes
    threshold: int
    parties: int
    chain_code: bytes
    generation: int
    path: str
    xpub: str
    tenant: str
    holder_parties: _containers.RepeatedScalarFieldContainer[int]
    holders: _containers.RepeatedScalarFieldContainer[str]
    org: str
    owner_tenant: str
    def __init__(self, key_id: _Optional[str] = ..., scheme: _Optional[str] = ..., public_key: _Optional[bytes] = ..., threshold: _Optional[int] = ..., parties: _Optional[int] = ..., chain_code: _Optional[bytes] = ..., generation: _Optional[int] = ..., path: _Optional[str] = ..., xpub: _Optional[str] = ..., tenant: _Optional[str] = ..., holder_parties: _Optional[_Iterable[int]] = ..., holders: _Optional[_Iterable[str]] = ..., org: _Optional[str] = ..., owner_tenant: _Optional[str] = ...) -> None: ...

class ReshareRequest(_message.Message):
    __slots__ = ("key_id", "parties", "threshold")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    parties: _containers.RepeatedScalarFieldContainer[int]
    threshold: int
    def __init__(self, key_id: _Optional[str] = ..., parties: _Optional[_Iterable[int]] = ..., threshold: _Optional[int] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("key_id", "path", "tenant")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    path: str
    tenant: str
    def __init__(self, key_id: _Optional[str] = ..., path: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyInfo]
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyInfo, _Mapping]]] = ...) -> None: ...

class SignRequest(_message.Message):
    __slots__ = ("key_id", "message", "digest", "path", "tenant")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    message: bytes
    digest: bytes
    path: str
    tenant: str
    def __init__(self, key_id: _Optional[str] = ..., message: _Optional[bytes] = ..., digest: _Optional[bytes] = ..., path: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class SignResponse(_message.Message):
    __slots__ = ("key_id", "signature", "public_key", "signers", "scheme", "signature_der", "recovery_id", "digest", "path")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNERS_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_DER_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_ID_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    signature: bytes
    public_key: bytes
    signers: _containers.RepeatedScalarFieldContainer[str]
    scheme: str
    signature_der: bytes
    recovery_id: int
    digest: bytes
    path: str
    def __init__(self, key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., public_key: _Optional[bytes] = ..., signers: _Optional[_Iterable[str]] = ..., scheme: _Optional[str] = ..., signature_der: _Optional[bytes] = ..., recovery_id: _Optional[int] = ..., digest: _Optional[bytes] = ..., path: _Optional[str] = ...) -> None: ...

class StartAuxInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetOperationRequest(_message.Message):
    __slots__ = ("operation_id",)
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    def __init__(self, operation_id: _Optional[str] = ...) -> None: ...

class Operation(_message.Message):
    __slots__ = ("operation_id", "kind", "state", "stage", "round", "rounds", "error", "culprits", "primes_ready")
    class PrimesReadyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CULPRITS_FIELD_NUMBER: _ClassVar[int]
    PRIMES_READY_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    kind: str
    state: str
    stage: str
    round: int
    rounds: int
    error: str
    culprits: _containers.RepeatedScalarFieldContainer[str]
    primes_ready: _containers.ScalarMap[str, int]
    def __init__(self, operation_id: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[str] = ..., stage: _Optional[str] = ..., round: _Optional[int] = ..., rounds: _Optional[int] = ..., error: _Optional[str] = ..., culprits: _Optional[_Iterable[str]] = ..., primes_ready: _Optional[_Mapping[str, int]] = ...) -> None: ...

class PresignStatusRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class PresignStatusResponse(_message.Message):
    __slots__ = ("key_id", "target", "pools")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    target: int
    pools: _containers.RepeatedCompositeFieldContainer[PresignPool]
    def __init__(self, key_id: _Optional[str] = ..., target: _Optional[int] = ..., pools: _Optional[_Iterable[_Union[PresignPool, _Mapping]]] = ...) -> None: ...

class PresignPool(_message.Message):
    __slots__ = ("signers", "ready", "in_flight", "made", "used")
    SIGNERS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    MADE_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    signers: _containers.RepeatedScalarFieldContainer[str]
    ready: int
    in_flight: int
    made: int
    used: int
    def __init__(self, signers: _Optional[_Iterable[str]] = ..., ready: _Optional[int] = ..., in_flight: _Optional[int] = ..., made: _Optional[int] = ..., used: _Optional[int] = ...) -> None: ...

class DeleteKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class DeleteTenantRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("key_ids", "nodes")
    KEY_IDS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    key_ids: _containers.RepeatedScalarFieldContainer[str]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeOutcome]
    def __init__(self, key_ids: _Optional[_Iterable[str]] = ..., nodes: _Optional[_Iterable[_Union[NodeOutcome, _Mapping]]] = ...) -> None: ...

class NodeOutcome(_message.Message):
    __slots__ = ("node", "outcome", "kek_fingerprint")
    NODE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    KEK_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    node: str
    outcome: str
    kek_fingerprint: str
    def __init__(self, node: _Optional[str] = ..., outcome: _Optional[str] = ..., kek_fingerprint: _Optional[str] = ...) -> None: ...

class RotateNodeKeksRequest(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, nodes: _Optional[_Iterable[str]] = ...) -> None: ...

class RotateNodeKeksResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeOutcome]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeOutcome, _Mapping]]] = ...) -> None: ...

class GetAuditLogRequest(_message.Message):
    __slots__ = ("from_seq", "limit")
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    from_seq: int
    limit: int
    def __init__(self, from_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class GetAuditLogResponse(_message.Message):
    __slots__ = ("lines", "head", "count", "public_key")
    LINES_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    head: str
    count: int
    public_key: bytes
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., head: _Optional[str] = ..., count: _Optional[int] = ..., public_key: _Optional[bytes] = ...) -> None: ...
