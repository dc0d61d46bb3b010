module github.com/go-clusterclient/clusterclient/codec/cbor

go 1.26.2

require (
	github.com/fxamacker/cbor/v2 v2.10.0
	github.com/go-clusterclient/clusterclient v0.0.0
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

require (
	github.com/x448/float16 v0.8.4 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/go-clusterclient/clusterclient => ../..
