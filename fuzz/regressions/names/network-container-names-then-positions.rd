# fuzz regression: a relu named `features.norm0` in the stem and an fc named `features.0` in the head: `check` passed and
# the generated forward ran `self.features[0]`, nn.Sequential's first module (the relu), as the fc ("resdsl bug: the
# generated module disagrees": output (4,), not (3,)); now a located error of `check`: its position is `features.1`
network t {
    input 3x8x8
    classes 3
    stem { conv 3x3, 4; bn; relu name: "features.norm0" }
    head { avgpool global; fc classes, name: "features.0" }
}
