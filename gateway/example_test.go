package gateway_test

import (
	"context"
	"fmt"
	"log"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// ExampleServer embeds the gateway in a program: a handler that answers
// each message, and a clean shutdown.
func ExampleServer() {
	h := gateway.HandlerFuncs{
		Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
			// data is valid until the handler returns; Send copies it.
			_ = c.Send(op, append([]byte("you said: "), data...))
		},
	}
	srv, err := gateway.NewServer(gateway.Config{Addr: "127.0.0.1:0"}, h)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil { // or: go srv.ListenAndServe()
		log.Fatal(err)
	}

	client, _, err := gorilla.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/ws", nil)
	if err != nil {
		log.Fatal(err)
	}
	client.WriteMessage(gorilla.TextMessage, []byte("hello"))
	_, reply, _ := client.ReadMessage()
	fmt.Println(string(reply))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go client.ReadMessage() // lets gorilla answer the server's close frame
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	client.Close()
	// Output: you said: hello
}
