module github.com/wsgate/wsgate

go 1.26

require (
	github.com/HdrHistogram/hdrhistogram-go v1.1.2
	github.com/gobwas/ws v1.5.0
	golang.org/x/sys v0.30.0
)

require github.com/gobwas/httphead v0.1.0 // indirect
