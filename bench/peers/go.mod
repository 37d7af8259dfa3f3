module github.com/wsgate/wsgate/bench/peers

go 1.26

require (
	github.com/gorilla/websocket v1.5.3
	github.com/lesismal/nbio v1.6.12
	github.com/lxzan/gws v1.9.1
	golang.org/x/sys v0.35.0
)

require (
	github.com/klauspost/compress v1.17.9 // indirect
	github.com/lesismal/llib v1.2.4 // indirect
	golang.org/x/crypto v0.0.0-20210513122933-cd7d49e622d5 // indirect
)
