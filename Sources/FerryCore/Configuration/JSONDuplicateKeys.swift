/// Finds a key that appears twice in one JSON object.
///
/// `JSONSerialization` (and the JSON provider) silently keep the last of two
/// equal keys, so `{"listen": "a", "listen": "b"}` would run with `b` while an
/// operator reads `a`. YAML files already fail on this; JSON files now do too.
/// A small scanner over the text: strings, objects and arrays are tracked,
/// every other token is skipped (the JSON parser validates the rest).
enum JSONDuplicateKeys {
    /// The dotted path of the first duplicated key, or nil.
    static func first(in text: String) -> String? {
        let bytes = Array(text.utf8)
        var index = 0
        // One frame per open container: the keys seen (objects only) and the path to it.
        struct Frame {
            var isObject: Bool
            var keys: Set<String> = []
            var path: String
            var expectingKey: Bool
        }
        var stack: [Frame] = []
        var lastKey: String?
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let parentPath =
                    stack.last.map { frame in
                        frame.isObject ? (frame.path.isEmpty ? (lastKey ?? "") : frame.path + "." + (lastKey ?? "")) : frame.path
                    } ?? ""
                stack.append(Frame(isObject: byte == UInt8(ascii: "{"), path: parentPath, expectingKey: byte == UInt8(ascii: "{")))
                index += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
                index += 1
            case UInt8(ascii: ","):
                if let last = stack.indices.last, stack[last].isObject { stack[last].expectingKey = true }
                index += 1
            case UInt8(ascii: "\""):
                var end = index + 1
                var value: [UInt8] = []
                while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
                    if bytes[end] == UInt8(ascii: "\\"), end + 1 < bytes.count {
                        value.append(bytes[end])
                        end += 1
                    }
                    value.append(bytes[end])
                    end += 1
                }
                index = end + 1
                if let last = stack.indices.last, stack[last].isObject, stack[last].expectingKey {
                    let key = String(decoding: value, as: UTF8.self)
                    if !stack[last].keys.insert(key).inserted {
                        return stack[last].path.isEmpty ? key : stack[last].path + "." + key
                    }
                    stack[last].expectingKey = false
                    lastKey = key
                }
            default:
                index += 1
            }
        }
        return nil
    }
}
