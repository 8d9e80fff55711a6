# fuzz regression: a stage of empty blocks (`block e() { }`) crashed the code generator (IndexError in Generator.in_channels) and verify_model (an empty stage has no last op)
block e() { }
block c(w) {
    conv 1x1, w
    e()
}
network t {
    input 4x8x8
    classes 2
    stem { e(); conv 1x1, 3; e() }
    stage s = e() * 3, c(5), e()
    stage u = e()
    head { avgpool global; e(); fc classes }
}
