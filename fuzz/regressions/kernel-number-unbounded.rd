# fuzz regression: a conv kernel written as a number has no upper bound (found as `mlpconv(1e18, ...)`): pad = kernel // 2 keeps the shape valid, check passes, the module cannot be built (torch: storage size overflowed; through a block argument: a float kernel)
# xfail: front end (the kernel check in lang/signatures.py, or ir/expand.py) should bound a numeric kernel like a WxH one (at most 65536)
network t {
    input 3x2x2
    classes 2
    stem { conv 1e18, 4 }
    head { avgpool global; fc classes }
}
