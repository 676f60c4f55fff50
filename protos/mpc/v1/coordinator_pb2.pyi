from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateKeyRequest(_message.Message):
    __slots__ = ("scheme", "threshold", "parties")
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    scheme: str
    threshold: int
    parties: int
    def __init__(self, scheme: _Optional[str] = ..., threshold: _Optional[int] = ..., parties: _Optional[int] = ...) -> None: ...

class KeyInfo(_message.Message):
    __slots__ = ("key_id", "scheme", "public_key", "threshold", "parties", "chain_code", "generation")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    CHAIN_CODE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    scheme: str
    public_key: bytes
    threshold: int
    parties: int
    chain_code: bytes
    generation: int
    def __init__(self, key_id: _Optional[str] = ..., scheme: _Optional[str] = ..., public_key: _Optional[bytes] = ..., threshold: _Optional[int] = ..., parties: _Optional[int] = ..., chain_code: _Optional[bytes] = ..., generation: _Optional[int] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyInfo]
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyInfo, _Mapping]]] = ...) -> None: ...

class SignRequest(_message.Message):
    __slots__ = ("key_id", "message")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    message: bytes
    def __init__(self, key_id: _Optional[str] = ..., message: _Optional[bytes] = ...) -> None: ...

class SignResponse(_message.Message):
    __slots__ = ("key_id", "signature", "public_key", "signers")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNERS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    signature: bytes
    public_key: bytes
    signers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., public_key: _Optional[bytes] = ..., signers: _Optional[_Iterable[str]] = ...) -> None: ...
