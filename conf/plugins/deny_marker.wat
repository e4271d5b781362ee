;; gw-plugin v1 example: BLOCK any text that contains the bytes "BLOCKME".
;; A bump allocator hands out memory; each call gets a fresh instance, so it never
;; needs freeing.
(module
  (import "gw" "set_reason" (func $set_reason (param i32 i32)))
  (memory (export "memory") 1 16)
  (global $top (mut i32) (i32.const 1024))
  (data (i32.const 16) "BLOCKME")
  (data (i32.const 32) "marker")
  (func (export "gw_abi_version") (result i32) (i32.const 1))
  (func (export "gw_alloc") (param $n i32) (result i32)
    (local $p i32) (local $need i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.add (local.get $p) (local.get $n)))
    ;; grow memory when the request does not fit
    (local.set $need
      (i32.sub (i32.shr_u (i32.add (global.get $top) (i32.const 65535)) (i32.const 16))
               (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $need)) (i32.const -1))
        (then (return (i32.const 0))))))
    (local.get $p))
  ;; does "BLOCKME" occur at p?
  (func $at (param $p i32) (result i32)
    (local $i i32)
    (block $no
      (loop $next
        (br_if $no (i32.ne (i32.load8_u (i32.add (local.get $p) (local.get $i)))
                           (i32.load8_u (i32.add (i32.const 16) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $i) (i32.const 7))))
      (return (i32.const 1)))
    (i32.const 0))
  (func (export "gw_check") (param $phase i32) (param $p i32) (param $n i32) (result i32)
    (local $i i32)
    (if (i32.lt_u (local.get $n) (i32.const 7)) (then (return (i32.const 0))))
    (block $done
      (loop $scan
        (if (call $at (i32.add (local.get $p) (local.get $i)))
          (then
            (call $set_reason (i32.const 32) (i32.const 6))
            (return (i32.const 3))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $scan (i32.le_u (local.get $i) (i32.sub (local.get $n) (i32.const 7))))))
    (i32.const 0)))
