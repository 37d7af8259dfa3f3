package client_test

import (
	"context"
	"fmt"

	"github.com/wsgate/wsgate/client"
)

func ExampleDial() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "ws://localhost:8080/ws", client.Options{
		Resume: true, // with a gateway that answers the envelope (docs/resume.md)
		OnMessage: func(t client.MessageType, data []byte) {
			fmt.Printf("%s\n", data) // data is valid only during the call
		},
		OnMissed: func(m client.Missed) {
			fmt.Println("missed messages:", m.Reason) // resynchronise from the backend
		},
	})
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.Send(client.Text, []byte("hello"))
}
