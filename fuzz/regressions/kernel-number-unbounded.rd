# fuzz regression: a conv kernel written as a number has no upper bound (found as `mlpconv(1e18, ...)`): pad = kernel // 2 keeps the shape valid, check passes, the module cannot be built (torch: storage size overflowed; through a block argument: a float kernel)
network t {
    input 3x2x2
    classes 2
    stem { conv 1e18, 4 }
    head { avgpool global; fc classes }
}
