;; test fixture: memory bomb
(module
  
  (memory (export "memory") 1 64)
  (global $top (mut i32) (i32.const 1024))
  (func (export "gw_abi_version") (result i32) (i32.const 1))
  (func (export "gw_alloc") (param $n i32) (result i32)
    (local $p i32) (local.set $p (global.get $top))
    (global.set $top (i32.add (local.get $p) (local.get $n))) (local.get $p))
  (func (export "gw_check") (param $phase i32) (param $p i32) (param $n i32) (result i32)
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) (unreachable)))
