#!/usr/bin/env python3
"""CDR reference vectors written by the independent `rosbags` package (tested with 0.11.9).

Writes tests/reference/cdr_vectors.json: messages of several types serialized by rosbags'
CDR serializer (little- and big-endian), each with its ros2msg definition (as MCAP stores it:
main type, then `MSG:` sections) and the values rosbags deserializes from the bytes, one entry
per field path:

  {"path": "header.stamp.sec", "kind": "num", "values": [..]}   numbers (scalar: one value;
                                                                 arrays and all-numeric
                                                                 sub-messages: flattened;
                                                                 "array": true on arrays of
                                                                 numbers)
  {"path": "header.frame_id", "kind": "str", "value": ".."}     scalar strings
  {"path": "name", "kind": "strs", "values": [..]}              string arrays

plus, for messages with a std_msgs/Header, the stamp in nanoseconds. tests/cdr_reference.rs
decodes every path with bagstream and compares.

    python3 tests/reference/make_cdr_vectors.py   # from the repository root
"""

import json
import math
import os

import numpy as np
from rosbags.typesys import Stores, get_typestore, get_types_from_msg

TS = get_typestore(Stores.ROS2_HUMBLE)
SEP = "=" * 80 + "\n"

# Custom types: their .msg text is given here (with comments, defaults and constants, which
# the parser must skip), so bagstream reads these exact texts.
CUSTOM = {
    "bagstream_test/msg/Inner": """# a nested type with a string in the middle
uint8 x
float64 y  # needs 8-byte alignment after x
string name
""",
    "bagstream_test/msg/Tagged": """uint8 tag
float64 v
""",
    "bagstream_test/msg/Row": """float32[] vals
int8 mark
""",
    "bagstream_test/msg/Mix": """# alignment exercise: every size after odd offsets
int8 a
uint64 b
string s
float64 c
uint8[] bytes
float64[3] fixed
int16 d
float32[<=4] bounded
string<=10 bs "x#y"   # a default holding a hash
Inner[] inners
Inner[2] pair
uint8 tail
float64[] empty_doubles
uint8 after_empty
bool flag
int32[] ints [1, 2, 3]
Tagged[] tagged
Tagged[3] tagged3
int32 LIMIT=7
string GREETING="hi # there"
uint16 u16
int64 last
""",
    "bagstream_test/msg/Nested": """Row[] rows
uint8 n
Row[2] two
char c
byte b
""",
    "bagstream_test/msg/WithEmpty": """uint8 before
std_msgs/Empty nothing
std_msgs/Empty[] nothings
float64 after
""",
}


def register_custom():
    for name, text in CUSTOM.items():
        TS.register(get_types_from_msg(text, name))


def short(name):
    """pkg/msg/Type -> pkg/Type, as MSG: lines spell it."""
    pkg, _, ty = name.split("/")
    return f"{pkg}/{ty}"


def deps(name, seen):
    """Every message type `name` uses, depth-first, each once."""
    out = []
    for _, desc in TS.fielddefs[name][1]:
        while desc[0] in (3, 4):  # ARRAY, SEQUENCE
            desc = desc[1][0]
        if desc[0] == 2:  # NAME
            sub = desc[1]
            if sub not in seen:
                seen.add(sub)
                out.append(sub)
                out.extend(deps(sub, seen))
    return out


def definition(name):
    """The ros2msg text: rosbags' own generator for standard types, ours for custom ones."""
    if name not in CUSTOM:
        return TS.generate_msgdef(name, ros_version=2)[0]
    text = CUSTOM[name]
    for sub in deps(name, {name}):
        body = CUSTOM.get(sub)
        if body is None:
            body = TS.generate_msgdef(sub, ros_version=2)[0].split(SEP)[0]
        text += SEP + f"MSG: {short(sub)}\n" + body
    return text


def plain(v):
    """A JSON-safe number (NaN and infinities do not occur in these vectors)."""
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    f = float(v)
    assert math.isfinite(f)
    return f


def fnv(values):
    """FNV-1a 64 of the values as little-endian float32: how long arrays are compared."""
    h = 0xCBF29CE484222325
    for b in np.asarray(values, dtype="<f4").tobytes():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def numbers(path, vals, long_over):
    """A `num` entry; arrays longer than `long_over` as their length and hash."""
    if long_over is not None and len(vals) > long_over:
        return {"path": path, "kind": "num", "len": len(vals), "fnv": fnv(vals)}
    return {"path": path, "kind": "num", "values": vals}


def type_numeric(ts, typename):
    """Whether every leaf of the type is a number: decided by type, as bagstream does (an
    empty array of a type with strings is still not numbers)."""
    for fname, desc in ts.fielddefs[typename][1]:
        while desc[0] in (3, 4):
            desc = desc[1][0]
        if desc[0] == 1 and desc[1][0] in ("string", "wstring"):
            return False
        if desc[0] == 2 and not type_numeric(ts, desc[1]):
            return False
    return True


def entries(msg, typename, prefix="", ts=None, long_over=None):
    """(path, kind, value) for every field of `msg`, and a flattened list or None.

    `ts`: the type store (default: this script's); `long_over`: arrays longer than this are
    given as length and hash. ROS 2's `byte` is an octet: rosbags gives int8, recorded here
    as the unsigned value bagstream reads.
    """
    ts = ts or TS
    out = []
    flat = []
    numeric = True
    for fname, desc in ts.fielddefs[typename][1]:
        if fname == "structure_needs_at_least_one_member":
            # rosidl's placeholder in empty messages: one byte on the wire, no field.
            continue
        path = prefix + fname
        val = getattr(msg, fname)
        kind = desc[0]
        if kind == 1:  # BASE
            base = desc[1][0]
            if base in ("string", "wstring"):
                out.append({"path": path, "kind": "str", "value": val})
                numeric = False
            else:
                v = plain(val) & 0xFF if base == "byte" else plain(val)
                out.append({"path": path, "kind": "num", "values": [v]})
                flat.append(v)
        elif kind == 2:  # NAME
            sub, subflat = entries(val, desc[1], path + ".", ts, long_over)
            out.extend(sub)
            if subflat is None:
                numeric = False
            else:
                out.append(numbers(path, subflat, long_over))
                flat.extend(subflat)
        else:  # ARRAY or SEQUENCE
            elem = desc[1][0]
            if elem[0] == 1:
                if elem[1][0] in ("string", "wstring"):
                    out.append({"path": path, "kind": "strs", "values": list(val)})
                    numeric = False
                else:
                    vals = [plain(v) for v in val]
                    if elem[1][0] == "byte":
                        vals = [v & 0xFF for v in vals]
                    entry = numbers(path, vals, long_over)
                    entry["array"] = True
                    out.append(entry)
                    flat.extend(vals)
            else:
                all_num = type_numeric(ts, elem[1])
                arr = []
                for i, item in enumerate(val):
                    sub, subflat = entries(item, elem[1], f"{path}[{i}].", ts, long_over)
                    out.extend(sub)
                    if subflat is not None:
                        out.append(numbers(f"{path}[{i}]", subflat, long_over))
                        arr.extend(subflat)
                if all_num:
                    out.append(numbers(path, arr, long_over))
                    flat.extend(arr)
                else:
                    numeric = False
    return out, (flat if numeric else None)


def vector(label, typename, msg, little_endian=True):
    raw = bytes(TS.serialize_cdr(msg, typename, little_endian=little_endian))
    back = TS.deserialize_cdr(raw, typename)
    fields, _ = entries(back, typename)
    v = {
        "label": label,
        "type": typename,
        "encoding": "cdr",
        "big_endian": not little_endian,
        "definition": definition(typename),
        "hex": raw.hex(),
        "fields": fields,
    }
    if any(f == "header" for f, _ in TS.fielddefs[typename][1]):
        st = back.header.stamp
        v["stamp_ns"] = st.sec * 1_000_000_000 + st.nanosec
    return v


def main():
    register_custom()
    T = TS.types
    Time = T["builtin_interfaces/msg/Time"]
    Header = T["std_msgs/msg/Header"]
    Vector3 = T["geometry_msgs/msg/Vector3"]
    Quat = T["geometry_msgs/msg/Quaternion"]
    Point = T["geometry_msgs/msg/Point"]
    Pose = T["geometry_msgs/msg/Pose"]
    out = []

    hdr = Header(stamp=Time(sec=1_700_000_123, nanosec=456_789_012), frame_id="base_link")
    js = T["sensor_msgs/msg/JointState"](
        header=hdr,
        name=["shoulder", "elbow_joint", "wrist"],
        position=np.array([0.5, -1.25, 3.0]),
        velocity=np.array([0.1, 0.2]),
        effort=np.array([], dtype=np.float64),
    )
    for le in (True, False):
        out.append(vector("joint_state", "sensor_msgs/msg/JointState", js, le))

    img = T["sensor_msgs/msg/Image"](
        header=Header(stamp=Time(sec=12, nanosec=5), frame_id="cam"),
        height=2,
        width=3,
        encoding="rgb8",
        is_bigendian=0,
        step=9,
        data=np.arange(18, dtype=np.uint8) * 13,
    )
    for le in (True, False):
        out.append(vector("image_rgb8_3x2", "sensor_msgs/msg/Image", img, le))

    comp = T["sensor_msgs/msg/CompressedImage"](
        header=Header(stamp=Time(sec=3, nanosec=0), frame_id="c"),
        format="jpeg",
        data=np.array([0xFF, 0xD8, 0xFF, 0xD9], dtype=np.uint8),
    )
    out.append(vector("compressed_image", "sensor_msgs/msg/CompressedImage", comp))

    ps = T["geometry_msgs/msg/PoseStamped"](
        header=Header(stamp=Time(sec=-5, nanosec=999_999_999), frame_id="odd"),
        pose=Pose(position=Point(x=1.0, y=-2.0, z=3.5), orientation=Quat(x=0.0, y=0.0, z=0.6, w=0.8)),
    )
    for le in (True, False):
        out.append(vector("pose_stamped", "geometry_msgs/msg/PoseStamped", ps, le))

    imu = T["sensor_msgs/msg/Imu"](
        header=Header(stamp=Time(sec=100, nanosec=1), frame_id="imu_link_x"),
        orientation=Quat(x=0.1, y=0.2, z=0.3, w=0.9),
        orientation_covariance=np.arange(9, dtype=np.float64) / 10,
        angular_velocity=Vector3(x=1.0, y=2.0, z=3.0),
        angular_velocity_covariance=np.zeros(9),
        linear_acceleration=Vector3(x=0.0, y=0.0, z=9.81),
        linear_acceleration_covariance=np.full(9, -1.0),
    )
    for le in (True, False):
        out.append(vector("imu", "sensor_msgs/msg/Imu", imu, le))

    Inner = T["bagstream_test/msg/Inner"]
    Tagged = T["bagstream_test/msg/Tagged"]
    mix = T["bagstream_test/msg/Mix"](
        a=-3,
        b=18_000_000_000_000_000_000,
        s="odd",
        c=-0.125,
        bytes=np.array([1, 2, 3, 250, 5], dtype=np.uint8),
        fixed=np.array([1.5, 2.5, 3.5]),
        d=-12345,
        bounded=np.array([0.25, 0.5, 0.75], dtype=np.float32),
        bs="hello",
        inners=[Inner(x=7, y=2.25, name="first"), Inner(x=255, y=-1e10, name="")],
        pair=[Inner(x=1, y=0.5, name="p0"), Inner(x=2, y=1.5, name="p1-long")],
        tail=9,
        empty_doubles=np.array([], dtype=np.float64),
        after_empty=77,
        flag=True,
        ints=np.array([-1, 0, 2147483647], dtype=np.int32),
        tagged=[Tagged(tag=1, v=1.0), Tagged(tag=2, v=-2.0), Tagged(tag=3, v=3.0)],
        tagged3=[Tagged(tag=4, v=4.0), Tagged(tag=5, v=5.5), Tagged(tag=6, v=-6.0)],
        u16=65535,
        last=-9_000_000_000_000_000_000,
    )
    for le in (True, False):
        out.append(vector("mix", "bagstream_test/msg/Mix", mix, le))

    Row = T["bagstream_test/msg/Row"]
    nested = T["bagstream_test/msg/Nested"](
        rows=[
            Row(vals=np.array([1.0, 2.0, 3.0], dtype=np.float32), mark=-1),
            Row(vals=np.array([], dtype=np.float32), mark=2),
            Row(vals=np.array([4.5], dtype=np.float32), mark=3),
        ],
        n=3,
        two=[Row(vals=np.array([7.0], dtype=np.float32), mark=4), Row(vals=np.array([8.0, 9.0], dtype=np.float32), mark=5)],
        c=200,
        # ROS 2's byte is an octet (bagstream: 0..255); rosbags reads it as int8, so the
        # vectors keep it below 128, where both agree.
        b=100,
    )
    for le in (True, False):
        out.append(vector("nested_sequences", "bagstream_test/msg/Nested", nested, le))

    Empty = T["std_msgs/msg/Empty"]
    we = T["bagstream_test/msg/WithEmpty"](before=5, nothing=Empty(), nothings=[Empty(), Empty()], after=2.5)
    for le in (True, False):
        out.append(vector("with_empty", "bagstream_test/msg/WithEmpty", we, le))

    tf = T["tf2_msgs/msg/TFMessage"](
        transforms=[
            T["geometry_msgs/msg/TransformStamped"](
                header=Header(stamp=Time(sec=1, nanosec=2), frame_id="world"),
                child_frame_id="a",
                transform=T["geometry_msgs/msg/Transform"](
                    translation=Vector3(x=1.0, y=2.0, z=3.0), rotation=Quat(x=0.0, y=0.0, z=0.0, w=1.0)
                ),
            ),
            T["geometry_msgs/msg/TransformStamped"](
                header=Header(stamp=Time(sec=3, nanosec=4), frame_id="a"),
                child_frame_id="bb",
                transform=T["geometry_msgs/msg/Transform"](
                    translation=Vector3(x=-1.0, y=0.0, z=0.5), rotation=Quat(x=0.5, y=0.5, z=0.5, w=0.5)
                ),
            ),
        ]
    )
    out.append(vector("tf_message", "tf2_msgs/msg/TFMessage", tf))

    bs = T["sensor_msgs/msg/BatteryState"](
        header=Header(stamp=Time(sec=9, nanosec=9), frame_id="bat"),
        voltage=12.5, temperature=30.0, current=-1.5, charge=2.0, capacity=4.0, design_capacity=5.0,
        percentage=0.5, power_supply_status=2, power_supply_health=1, power_supply_technology=3,
        present=True, cell_voltage=np.array([3.1, 3.2, 3.3], dtype=np.float32),
        cell_temperature=np.array([25.0], dtype=np.float32), location="slot", serial_number="SN1",
    )
    out.append(vector("battery_state", "sensor_msgs/msg/BatteryState", bs))

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cdr_vectors.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"{len(out)} vectors -> {path}")


if __name__ == "__main__":
    main()
