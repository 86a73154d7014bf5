"""The public names an error signature may keep: exception classes everybody's tools raise.

A class named in error output is kept only when it is public: a built-in
exception of Python, or a well-known one of the standard library, of the
JavaScript runtimes, of the JVM or of widely used libraries. A class the
user's own code defines (``InvoiceMismatchError``) names their code and
becomes a placeholder, as do the modules that qualify it
(``billing.errors.``).
"""

from __future__ import annotations

import builtins

_PYTHON_BUILTINS = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)

# Standard library, JavaScript, JVM and common third-party classes (by their last
# component: a signature drops the modules that qualify a class).
_WELL_KNOWN = frozenset(
    """
    JSONDecodeError CalledProcessError TimeoutExpired SubprocessError OperationalError
    IntegrityError ProgrammingError DatabaseError InterfaceError DataError NotSupportedError
    UnpicklingError PicklingError ParseError ExpatError BadZipFile BadZipfile ReadError
    HTTPError URLError RemoteDisconnected IncompleteRead InvalidURL SSLError
    SSLCertVerificationError
    CancelledError InvalidStateError QueueEmpty QueueFull BrokenProcessPool BrokenExecutor
    UnsupportedOperation Empty Full
    ReferenceError RangeError EvalError URIError AggregateError InternalError
    ClassNotFoundException NullPointerException ArrayIndexOutOfBoundsException
    IndexOutOfBoundsException StringIndexOutOfBoundsException IllegalArgumentException
    IllegalStateException IOException UncheckedIOException FileNotFoundException
    NumberFormatException ArithmeticException ClassCastException UnsupportedOperationException
    ConcurrentModificationException NoSuchElementException NoSuchFieldException
    NoSuchMethodException NoSuchMethodError NoClassDefFoundError OutOfMemoryError
    StackOverflowError InterruptedException ExecutionException TimeoutException
    SecurityException SQLException RuntimeException Exception Throwable
    ConnectTimeout ReadTimeout ConnectTimeoutError ReadTimeoutError MaxRetryError
    NewConnectionError ProtocolError ChunkedEncodingError ContentDecodingError
    TooManyRedirects InvalidSchema MissingSchema InvalidHeader RequestException
    ValidationError YAMLError ScannerError ParserError ComposerError ConstructorError
    TemplateNotFound TemplateSyntaxError UndefinedError ImproperlyConfigured
    ObjectDoesNotExist MultipleObjectsReturned SuspiciousOperation FieldError
    NoReverseMatch OperationalError SQLAlchemyError NoResultFound MultipleResultsFound
    InvalidRequestError ArgumentError CompileError ResolutionImpossible
    InstallationError DistributionNotFound VersionConflict InvalidRequirement InvalidVersion
    CUDAError OutOfMemoryError NotFittedError ConvergenceWarning
    APIError APIConnectionError APITimeoutError AuthenticationError BadRequestError
    RateLimitError PermissionDeniedError NotFoundError ConflictError UnprocessableEntityError
    InternalServerError ServiceUnavailableError OverloadedError
    ClickException UsageError BadParameter NoSuchOption BadOptionUsage Abort
    """.split()
)

PUBLIC_EXCEPTIONS: frozenset[str] = _PYTHON_BUILTINS | _WELL_KNOWN
"""Exception class names a signature keeps (every other class name becomes ``<exc>``)."""


def is_public_exception(name: str) -> bool:
    """Whether ``name`` (a class's last component) is a public exception class."""
    return name in PUBLIC_EXCEPTIONS
