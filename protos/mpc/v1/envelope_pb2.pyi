from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Envelope(_message.Message):
    __slots__ = ("session_id", "protocol", "round", "sender", "recipient", "payload", "signature")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    protocol: str
    round: int
    sender: int
    recipient: int
    payload: bytes
    signature: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., protocol: _Optional[str] = ..., round: _Optional[int] = ..., sender: _Optional[int] = ..., recipient: _Optional[int] = ..., payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class KeyRecord(_message.Message):
    __slots__ = ("key_id", "scheme", "threshold", "parties", "public_key", "verifying_shares", "chain_code", "generation", "confirmations", "org", "tenant")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    VERIFYING_SHARES_FIELD_NUMBER: _ClassVar[int]
    CHAIN_CODE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    CONFIRMATIONS_FIELD_NUMBER: _ClassVar[int]
    ORG_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    scheme: str
    threshold: int
    parties: _containers.RepeatedScalarFieldContainer[int]
    public_key: bytes
    verifying_shares: _containers.RepeatedScalarFieldContainer[bytes]
    chain_code: bytes
    generation: int
    confirmations: _containers.RepeatedCompositeFieldContainer[Envelope]
    org: str
    tenant: str
    def __init__(self, key_id: _Optional[str] = ..., scheme: _Optional[str] = ..., threshold: _Optional[int] = ..., parties: _Optional[_Iterable[int]] = ..., public_key: _Optional[bytes] = ..., verifying_shares: _Optional[_Iterable[bytes]] = ..., chain_code: _Optional[bytes] = ..., generation: _Optional[int] = ..., confirmations: _Optional[_Iterable[_Union[Envelope, _Mapping]]] = ..., org: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...
