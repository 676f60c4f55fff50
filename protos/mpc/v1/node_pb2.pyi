from protos.mpc.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeDeleteKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class NodeDeleteKeyResponse(_message.Message):
    __slots__ = ("outcome", "generations", "presignatures")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    PRESIGNATURES_FIELD_NUMBER: _ClassVar[int]
    outcome: str
    generations: int
    presignatures: int
    def __init__(self, outcome: _Optional[str] = ..., generations: _Optional[int] = ..., presignatures: _Optional[int] = ...) -> None: ...

class NodeDeleteTenantRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class NodeDeleteTenantResponse(_message.Message):
    __slots__ = ("key_ids",)
    KEY_IDS_FIELD_NUMBER: _ClassVar[int]
    key_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RotateKekRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateKekResponse(_message.Message):
    __slots__ = ("outcome", "kek_fingerprint")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    KEK_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    outcome: str
    kek_fingerprint: str
    def __init__(self, outcome: _Optional[str] = ..., kek_fingerprint: _Optional[str] = ...) -> None: ...

class StartRequest(_message.Message):
    __slots__ = ("session_id", "protocol", "key_id", "threshold", "parties", "message", "scheme", "path", "dealers", "new_parties", "old_public", "tenant", "owner_org", "owner_tenant")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    DEALERS_FIELD_NUMBER: _ClassVar[int]
    NEW_PARTIES_FIELD_NUMBER: _ClassVar[int]
    OLD_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    OWNER_ORG_FIELD_NUMBER: _ClassVar[int]
    OWNER_TENANT_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    protocol: str
    key_id: str
    threshold: int
    parties: _containers.RepeatedScalarFieldContainer[int]
    message: bytes
    scheme: str
    path: _containers.RepeatedScalarFieldContainer[int]
    dealers: _containers.RepeatedScalarFieldContainer[int]
    new_parties: _containers.RepeatedScalarFieldContainer[int]
    old_public: bytes
    tenant: str
    owner_org: str
    owner_tenant: str
    def __init__(self, session_id: _Optional[bytes] = ..., protocol: _Optional[str] = ..., key_id: _Optional[str] = ..., threshold: _Optional[int] = ..., parties: _Optional[_Iterable[int]] = ..., message: _Optional[bytes] = ..., scheme: _Optional[str] = ..., path: _Optional[_Iterable[int]] = ..., dealers: _Optional[_Iterable[int]] = ..., new_parties: _Optional[_Iterable[int]] = ..., old_public: _Optional[bytes] = ..., tenant: _Optional[str] = ..., owner_org: _Optional[str] = ..., owner_tenant: _Optional[str] = ...) -> None: ...

class StepRequest(_message.Message):
    __slots__ = ("session_id", "envelopes")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    envelopes: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.Envelope]
    def __init__(self, session_id: _Optional[bytes] = ..., envelopes: _Optional[_Iterable[_Union[_envelope_pb2.Envelope, _Mapping]]] = ...) -> None: ...

class StepResponse(_message.Message):
    __slots__ = ("envelopes", "done")
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.Envelope]
    done: bool
    def __init__(self, envelopes: _Optional[_Iterable[_Union[_envelope_pb2.Envelope, _Mapping]]] = ..., done: _Optional[bool] = ...) -> None: ...

class AbortRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    def __init__(self, session_id: _Optional[bytes] = ...) -> None: ...

class AbortResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetKeyRecordRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class ListKeyRecordsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListKeyRecordsResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.KeyRecord]
    def __init__(self, keys: _Optional[_Iterable[_Union[_envelope_pb2.KeyRecord, _Mapping]]] = ...) -> None: ...

class IdentityRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IdentityResponse(_message.Message):
    __slots__ = ("party", "name", "signing_key", "box_key")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    BOX_KEY_FIELD_NUMBER: _ClassVar[int]
    party: int
    name: str
    signing_key: bytes
    box_key: bytes
    def __init__(self, party: _Optional[int] = ..., name: _Optional[str] = ..., signing_key: _Optional[bytes] = ..., box_key: _Optional[bytes] = ...) -> None: ...

class PartialSignRequest(_message.Message):
    __slots__ = ("key_id", "presignature_id", "request_id", "signers", "message", "path", "tenant")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PRESIGNATURE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNERS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    presignature_id: bytes
    request_id: bytes
    signers: _containers.RepeatedScalarFieldContainer[int]
    message: bytes
    path: _containers.RepeatedScalarFieldContainer[int]
    tenant: str
    def __init__(self, key_id: _Optional[str] = ..., presignature_id: _Optional[bytes] = ..., request_id: _Optional[bytes] = ..., signers: _Optional[_Iterable[int]] = ..., message: _Optional[bytes] = ..., path: _Optional[_Iterable[int]] = ..., tenant: _Optional[str] = ...) -> None: ...

class PartialSignResponse(_message.Message):
    __slots__ = ("party", "sigma", "presignature_public")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    SIGMA_FIELD_NUMBER: _ClassVar[int]
    PRESIGNATURE_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    party: int
    sigma: bytes
    presignature_public: bytes
    def __init__(self, party: _Optional[int] = ..., sigma: _Optional[bytes] = ..., presignature_public: _Optional[bytes] = ...) -> None: ...

class AuxInfoStatusRequest(_message.Message):
    __slots__ = ("parties",)
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    parties: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, parties: _Optional[_Iterable[int]] = ...) -> None: ...

class AuxInfoStatusResponse(_message.Message):
    __slots__ = ("ready", "primes_ready", "primes_needed")
    READY_FIELD_NUMBER: _ClassVar[int]
    PRIMES_READY_FIELD_NUMBER: _ClassVar[int]
    PRIMES_NEEDED_FIELD_NUMBER: _ClassVar[int]
    ready: bool
    primes_ready: int
    primes_needed: int
    def __init__(self, ready: _Optional[bool] = ..., primes_ready: _Optional[int] = ..., primes_needed: _Optional[int] = ...) -> None: ...

class ListPresignaturesRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class ListPresignaturesResponse(_message.Message):
    __slots__ = ("presignatures",)
    PRESIGNATURES_FIELD_NUMBER: _ClassVar[int]
    presignatures: _containers.RepeatedCompositeFieldContainer[PresignatureEntry]
    def __init__(self, presignatures: _Optional[_Iterable[_Union[PresignatureEntry, _Mapping]]] = ...) -> None: ...

class PresignatureEntry(_message.Message):
    __slots__ = ("presignature_id", "signers", "generation")
    PRESIGNATURE_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNERS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    presignature_id: bytes
    signers: _containers.RepeatedScalarFieldContainer[int]
    generation: int
    def __init__(self, presignature_id: _Optional[bytes] = ..., signers: _Optional[_Iterable[int]] = ..., generation: _Optional[int] = ...) -> None: ...

class CertifyGenerationRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: _envelope_pb2.KeyRecord
    def __init__(self, record: _Optional[_Union[_envelope_pb2.KeyRecord, _Mapping]] = ...) -> None: ...

class CertifyGenerationResponse(_message.Message):
    __slots__ = ("outcome",)
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    outcome: str
    def __init__(self, outcome: _Optional[str] = ...) -> None: ...
