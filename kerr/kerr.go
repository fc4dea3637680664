// Package kerr defines the errors of the Kurento Protocol: a numeric code, a message and, for Kurento
// codes, a data.type name. Every layer returns these so that the wire answer is decided where the
// failure is understood.
package kerr

import (
	"errors"
	"fmt"
)

// Codes of the JSON-RPC layer and of Kurento (api.json "errorCodes").
const (
	ParseError     = -32700
	InvalidRequest = -32600
	MethodNotFound = -32601
	InvalidParams  = -32602
	InternalError  = -32603
	ServerError    = -32000

	MarshallError                  = 40001
	UnexpectedError                = 40003
	ConnectError                   = 40004
	UnsupportedMediaType           = 40005
	NotImplemented                 = 40006
	InvalidSession                 = 40007
	MalformedTransaction           = 40008
	NotEnoughResources             = 40009
	ObjectTypeNotFound             = 40100
	ObjectNotFound                 = 40101
	ConstructorNotFound            = 40104
	MethodNotFoundKurento          = 40105
	EventNotSupported              = 40106
	IllegalParam                   = 40107
	ObjectNotAvailable             = 40108
	ObjectNotFoundTransactionNoCmt = 40109
	TagKeyNotFound                 = 40110
	OperationNotSupported          = 40111
	SdpCreateError                 = 40200
	SdpParseError                  = 40201
	SdpNoLocalSdp                  = 40202
	SdpNoRemoteSdp                 = 40203
	SdpGenerateOfferError          = 40204
	SdpProcessOfferError           = 40205
	SdpProcessAnswerError          = 40206
	SdpConfigurationError          = 40207
	SdpAlreadyNegotiated           = 40208
	SdpNotOfferGenerated           = 40209
	SdpAnswerAlreadyProcessed      = 40210
	SdpCannotCreateSession         = 40211
	HttpEndpointRegistrationError  = 40300
	IceGatherCandidatesError       = 40400
	IceAddCandidateError           = 40401
	KmdNotFound                    = 40500
	UriPathFileNotFound            = 40600
	PlayerSeekFail                 = 40700
)

var typeNames = map[int]string{
	InvalidParams:                  "INVALID_PARAMS",
	MarshallError:                  "MARSHALL_ERROR",
	UnexpectedError:                "UNEXPECTED_ERROR",
	ConnectError:                   "CONNECT_ERROR",
	UnsupportedMediaType:           "UNSUPPORTED_MEDIA_TYPE",
	NotImplemented:                 "NOT_IMPLEMENTED",
	InvalidSession:                 "INVALID_SESSION",
	MalformedTransaction:           "MALFORMED_TRANSACTION",
	NotEnoughResources:             "NOT_ENOUGH_RESOURCES",
	ObjectTypeNotFound:             "MEDIA_OBJECT_TYPE_NOT_FOUND",
	ObjectNotFound:                 "MEDIA_OBJECT_NOT_FOUND",
	ConstructorNotFound:            "MEDIA_OBJECT_CONSTRUCTOR_NOT_FOUND",
	MethodNotFoundKurento:          "MEDIA_OBJECT_METHOD_NOT_FOUND",
	EventNotSupported:              "MEDIA_OBJECT_EVENT_NOT_SUPPORTED",
	IllegalParam:                   "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR",
	ObjectNotAvailable:             "MEDIA_OBJECT_NOT_AVAILABLE",
	ObjectNotFoundTransactionNoCmt: "MEDIA_OBJECT_NOT_FOUND_TRANSACTION_NO_COMMIT",
	TagKeyNotFound:                 "MEDIA_OBJECT_TAG_KEY_NOT_FOUND",
	OperationNotSupported:          "MEDIA_OBJECT_OPERATION_NOT_SUPPORTED",
	SdpCreateError:                 "SDP_CREATE_ERROR",
	SdpParseError:                  "SDP_PARSE_ERROR",
	SdpNoLocalSdp:                  "SDP_END_POINT_NO_LOCAL_SDP_ERROR",
	SdpNoRemoteSdp:                 "SDP_END_POINT_NO_REMOTE_SDP_ERROR",
	SdpGenerateOfferError:          "SDP_END_POINT_GENERATE_OFFER_ERROR",
	SdpProcessOfferError:           "SDP_END_POINT_PROCESS_OFFER_ERROR",
	SdpProcessAnswerError:          "SDP_END_POINT_PROCESS_ANSWER_ERROR",
	SdpConfigurationError:          "SDP_CONFIGURATION_ERROR",
	SdpAlreadyNegotiated:           "SDP_END_POINT_ALREADY_NEGOTIATED",
	SdpNotOfferGenerated:           "SDP_END_POINT_NOT_OFFER_GENERATED",
	SdpAnswerAlreadyProcessed:      "SDP_END_POINT_ANSWER_ALREADY_PROCCESED",
	SdpCannotCreateSession:         "SDP_END_POINT_CANNOT_CREATE_SESSON",
	HttpEndpointRegistrationError:  "HTTP_END_POINT_REGISTRATION_ERROR",
	IceGatherCandidatesError:       "ICE_GATHER_CANDIDATES_ERROR",
	IceAddCandidateError:           "ICE_ADD_CANDIDATE_ERROR",
	KmdNotFound:                    "SERVER_MANAGER_ERROR_KMD_NOT_FOUND",
	UriPathFileNotFound:            "URI_PATH_FILE_NOT_FOUND",
	PlayerSeekFail:                 "PLAYER_SEEK_FAIL",
}

// Error is a protocol error as it goes on the wire.
type Error struct {
	Code    int
	Message string
	// Data is the value of error.data when it is not {"type": ...}; used for notification replies.
	Data any
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// Type is the data.type name of the code, "" for codes that carry no data.
func (e *Error) Type() string { return typeNames[e.Code] }

// New makes an error with a formatted message.
func New(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// NotFound is the error for an unknown or released object id.
func NotFound(id string) *Error { return New(ObjectNotFound, "Object '%s' not found", id) }

// From finds the protocol error in err, or wraps an unexpected one as KMS does.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return New(InternalError, "Unexpected error while processing method: %v", err)
}
