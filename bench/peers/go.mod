module github.com/wsgate/wsgate/bench/peers

go 1.26

require (
	github.com/gorilla/websocket v1.5.3
	github.com/lesismal/nbio v1.6.12
	github.com/lxzan/gws v1.9.1
	github.com/panjf2000/gnet/v2 v2.10.0
	golang.org/x/sys v0.35.0
)

require (
	github.com/klauspost/compress v1.17.9 // indirect
	github.com/lesismal/llib v1.2.4 // indirect
	github.com/panjf2000/ants/v2 v2.12.1 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	go.uber.org/multierr v1.11.0 // indirect
	go.uber.org/zap v1.28.0 // indirect
	golang.org/x/crypto v0.0.0-20210513122933-cd7d49e622d5 // indirect
	golang.org/x/sync v0.11.0 // indirect
	gopkg.in/natefinch/lumberjack.v2 v2.2.1 // indirect
)
