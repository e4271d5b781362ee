;; test fixture: bad alloc
(module
  
  (memory (export "memory") 1 64)
  (global $top (mut i32) (i32.const 1024))
  (func (export "gw_abi_version") (result i32) (i32.const 1))
  (func (export "gw_alloc") (param $n i32) (result i32)
    (local $p i32) (local.set $p (global.get $top))
    (global.set $top (i32.add (local.get $p) (local.get $n))) (drop (local.get $p)) (return (i32.const 70000)))
  (func (export "gw_check") (param $phase i32) (param $p i32) (param $n i32) (result i32)
    (i32.const 0)))
