; Exercises VXM float ops, an SXM permute by a lane map, sync/notify, ifetch/config, repeat,
; .data and .fill on one tsp-v1 chip. Issue cycles are in the comments.
.config tsp-v1
.chips 1
.predicted_cycles 87

.map 0                          ; lane reversal: dst[i] = src[319 - i]
    319 318 317 316 315 314 313 312 311 310 309 308 307 306 305 304
    303 302 301 300 299 298 297 296 295 294 293 292 291 290 289 288
    287 286 285 284 283 282 281 280 279 278 277 276 275 274 273 272
    271 270 269 268 267 266 265 264 263 262 261 260 259 258 257 256
    255 254 253 252 251 250 249 248 247 246 245 244 243 242 241 240
    239 238 237 236 235 234 233 232 231 230 229 228 227 226 225 224
    223 222 221 220 219 218 217 216 215 214 213 212 211 210 209 208
    207 206 205 204 203 202 201 200 199 198 197 196 195 194 193 192
    191 190 189 188 187 186 185 184 183 182 181 180 179 178 177 176
    175 174 173 172 171 170 169 168 167 166 165 164 163 162 161 160
    159 158 157 156 155 154 153 152 151 150 149 148 147 146 145 144
    143 142 141 140 139 138 137 136 135 134 133 132 131 130 129 128
    127 126 125 124 123 122 121 120 119 118 117 116 115 114 113 112
    111 110 109 108 107 106 105 104 103 102 101 100 99 98 97 96
    95 94 93 92 91 90 89 88 87 86 85 84 83 82 81 80
    79 78 77 76 75 74 73 72 71 70 69 68 67 66 65 64
    63 62 61 60 59 58 57 56 55 54 53 52 51 50 49 48
    47 46 45 44 43 42 41 40 39 38 37 36 35 34 33 32
    31 30 29 28 27 26 25 24 23 22 21 20 19 18 17 16
    15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0

.tensor input x i8 [320] chip=0 slices=MEM_E0 addr=0
.tensor output y f32 [1,320] chip=0 slices=MEM_E43,MEM_E42,MEM_E41,MEM_E40 addr=0

.data chip=0 slice=MEM_E1 addr=1
    000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
.fill chip=0 slice=MEM_E1 addr=2 count=640 seed=7

.chip 0
.queue MEM_E0
    read 0, W0                  ; @0, at VXM (46) on cycle 3
.queue MEM_E1
    read 1, W2                  ; @0
    repeat 2, 3                 ; @3 (addr 2), @6 (addr 3)
.queue VXM.0
    nop 3
    cvt.i8 W0 -> .f32 E4        ; @3, E4..E7 at 46 on cycle 6
.queue VXM.1
    nop 6
    muli.f32 E4, 0.5 -> E8      ; @6
.queue VXM.2
    nop 10
    addi.f32 E8, -1.25 -> E12   ; @10, at SXM_E (91) on cycle 58
.queue VXM.3
    nop 20
    notify                      ; @20
.queue SXM_E.0
    nop 58
    permute.f32 E12, m0 -> W16  ; @58, W16..W19 at 91 on cycle 62
.queue SXM_E.1
    sync                        ; released by the notify at 20: resumes at 22
    ifetch 4
    config 7
.queue MEM_E43
    nop 63
    write W16, 0
.queue MEM_E42
    nop 64
    write W17, 0
.queue MEM_E41
    nop 65
    write W18, 0
.queue MEM_E40
    nop 66
    write W19, 0
