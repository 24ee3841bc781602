module github.com/orderflow/orderflow/bench/peers

go 1.26.8

replace github.com/orderflow/orderflow => ../..
