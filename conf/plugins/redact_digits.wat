;; gw-plugin v1 example: REDACT every ASCII digit (replaced by '#') and say why.
;; Text without digits is allowed unchanged.
(module
  (import "gw" "set_reason" (func $set_reason (param i32 i32)))
  (import "gw" "set_redaction" (func $set_redaction (param i32 i32)))
  (memory (export "memory") 1 64)
  (global $top (mut i32) (i32.const 1024))
  (data (i32.const 16) "digits")
  (func (export "gw_abi_version") (result i32) (i32.const 1))
  (func (export "gw_alloc") (param $n i32) (result i32)
    (local $p i32) (local $need i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.add (local.get $p) (local.get $n)))
    (local.set $need
      (i32.sub (i32.shr_u (i32.add (global.get $top) (i32.const 65535)) (i32.const 16))
               (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $need)) (i32.const -1))
        (then (return (i32.const 0))))))
    (local.get $p))
  (func (export "gw_check") (param $phase i32) (param $p i32) (param $n i32) (result i32)
    (local $i i32) (local $c i32) (local $found i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $scan
        (local.set $c (i32.load8_u (i32.add (local.get $p) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 48))
                     (i32.le_u (local.get $c) (i32.const 57)))
          (then
            (i32.store8 (i32.add (local.get $p) (local.get $i)) (i32.const 35))
            (local.set $found (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $scan (i32.lt_u (local.get $i) (local.get $n)))))
    (if (i32.eqz (local.get $found)) (then (return (i32.const 0))))
    (call $set_reason (i32.const 16) (i32.const 6))
    (call $set_redaction (local.get $p) (local.get $n))
    (i32.const 4)))
