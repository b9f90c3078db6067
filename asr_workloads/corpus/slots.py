"""Slot values for the command templates: names, places, things, in spoken form.

Many values per slot, combined freely (first x last names, adjective x noun song titles),
so that a recognizer trained on the corpus has to spell what it hears rather than pick one
of a few hundred memorised phrases. Every value is lower case and holds only characters of
the transcript vocabulary (letters, space, apostrophe).
"""

from __future__ import annotations

__all__ = [
    "ACTIVITIES",
    "APPS",
    "ARTIST_NOUNS",
    "CITIES",
    "COLOURS",
    "DEVICES",
    "FIRST_NAMES",
    "GENRES",
    "LAST_NAMES",
    "MESSAGES",
    "ROOMS",
    "SHOPPING_ITEMS",
    "SONG_ADJECTIVES",
    "SONG_NOUNS",
    "STREET_NAMES",
    "STREET_TYPES",
    "TASKS",
    "WEEKDAYS",
]


def _words(block: str) -> tuple[str, ...]:
    """One value per line of ``block`` (values may hold spaces), blank lines skipped."""
    return tuple(line.strip() for line in block.strip().splitlines() if line.strip())


def _tokens(block: str) -> tuple[str, ...]:
    """The whitespace-separated words of ``block`` (for one-word values, packed densely)."""
    return tuple(block.split())


FIRST_NAMES = _tokens(
    """
    ada agnes ahmed aisha akira alberto alfred alma amir ana andre angelo anita ari arjun
    astrid barry beatrice bella bernadette boris brady bridget carla cecilia chen clifford
    damian dante darius delia desmond dmitri dolores doris edgar elise elliot elsa emil
    enzo esther farah fatima fernando flora freya gavin gemma gideon giorgio greta gustavo
    hamza hank harriet hector hugo ingrid iris ivy jamal javier jonas kai kamala kenji
    lars layla lena lorenzo luca lydia malik marcus mateo milo mina nadia nikhil nina
    omar otto pablo priya quentin rafael ravi rosalind rowan sasha sergei silas soren
    tobias ursula vera wanda yuki yusuf zara
    aaron abigail adam adrian aiden alan albert alex alexander alice alicia alison amanda amber
    amelia amy andrea andrew angela anna anthony antonio arthur ashley audrey austin barbara
    benjamin bernard beth betty beverly bill blake bob bonnie brandon brenda brian brittany bruce
    bryan caleb cameron carl carlos carmen carol caroline catherine charles charlotte chloe chris
    christian christina cindy claire clara colin connor craig cynthia daisy dale daniel danielle
    david dean deborah denise dennis derek diana diane diego dominic donald donna dorothy douglas
    dylan edward eileen elena eli elijah elizabeth ella ellen emily emma eric erica ethan eugene
    eva evelyn felix fiona frances frank gabriel gary george gerald gina gloria grace graham
    grant greg hannah harold harry hazel heather helen henry holly howard ian irene isaac
    isabella ivan jack jacob jake james jamie jane janet jasmine jason jean jeffrey jenna jennifer
    jeremy jerry jesse jessica jill joan joe joel john jonathan jordan jose joseph joshua joyce
    judith julia julian justin karen kate katherine kathleen keith kelly kenneth kevin kim kyle
    laura lauren lawrence leah leo leon liam lily linda lisa logan louis lucas lucy luis luke
    madison maggie marco margaret maria marie mark martha martin mary mason matthew maya megan
    melissa mia michael michelle mike miles miriam molly monica morgan nancy naomi natalie nathan
    neil nicholas nicole noah nora oliver olivia oscar owen pamela patricia patrick paul paula
    peter philip phoebe rachel ralph raymond rebecca richard rita robert robin roger ronald rosa
    rose roy ruby russell ruth ryan sally samantha samuel sandra sara scott sean sharon shirley
    simon sofia sophie stanley stella stephanie steven susan sylvia tara teresa theo thomas
    timothy tina todd tom tony tracy trevor tyler valerie vanessa victor victoria vincent
    violet walter wayne wendy william xavier yvonne zachary zoe
    """
)

LAST_NAMES = _tokens(
    """
    abbott ahmed ali andrews arnold austin barker bauer becker benson blake bowman
    bishop brennan byrne cameron carr castro chan chang chen cho christensen cohen
    conway costa dalton delgado doyle drake dubois dyer eaton erikson farrell fischer
    fitzgerald flores frost fuller gallagher garza goldberg gupta hardy hale hayward hines
    ho hoover horton huang ibrahim ingram jensen kaplan kaur keller khan kim klein koch
    kowalski kumar larsen lin liu lowe macdonald mahoney mann marsh mccarthy mckenzie
    molina moreno nakamura novak o'donnell pham popescu rahman rossi sato schneider
    silva singh soto suzuki tanaka tran vargas vega wang weiss wolfe wong yamamoto zhang
    adams allen alvarez anderson armstrong atkinson bailey baker banks barnes bell bennett
    black boyd bradley brooks brown bryant burke burns butler campbell carpenter carroll carter
    castillo chapman chavez clark cole coleman collins cook cooper cox crawford cruz cunningham
    daniels davidson davies davis dawson day dean diaz dixon douglas duncan dunn edwards elliott
    ellis evans ferguson fernandez fisher fleming fletcher ford foster fox franklin freeman
    garcia gardner gibson gilbert gomez gonzalez gordon graham grant gray green greene griffin
    hall hamilton hansen harper harris harrison hart harvey hawkins hayes henderson henry
    hernandez hill hoffman holland holmes howard hudson hughes hunt hunter jackson james jenkins
    johnson johnston jones jordan kelly kennedy king knight lambert lane lawrence lee lewis
    lopez lynch marshall martin martinez mason matthews mcdonald mendoza meyer miller mills
    mitchell moore morales morgan morris murphy murray myers nelson newman nguyen nichols
    o'brien o'connor o'neill olson ortiz owens palmer parker patel patterson payne pearson
    perez perry peters phillips pierce porter powell price quinn ramirez ramos reed reid
    reyes reynolds rice richards richardson riley rivera roberts robertson robinson rodriguez
    rogers rose ross russell ryan sanchez sanders schmidt scott shaw simmons simpson smith
    snyder spencer stephens stevens stewart stone sullivan sutton taylor thomas thompson torres
    tucker turner vasquez wagner walker wallace walsh ward warren washington watson webb weber
    wells west wheeler white williams willis wilson wood woods wright young
    """
)

CITIES = _words(
    """
    amsterdam
    athens
    atlanta
    auckland
    austin
    baltimore
    bangkok
    barcelona
    beijing
    berlin
    birmingham
    boston
    brisbane
    brussels
    budapest
    buenos aires
    cairo
    calgary
    cape town
    charlotte
    chicago
    cincinnati
    cleveland
    copenhagen
    dallas
    denver
    detroit
    dublin
    edinburgh
    el paso
    florence
    frankfurt
    geneva
    glasgow
    hamburg
    helsinki
    hong kong
    honolulu
    houston
    indianapolis
    istanbul
    jakarta
    kansas city
    kyoto
    lagos
    las vegas
    leeds
    lima
    lisbon
    liverpool
    london
    los angeles
    louisville
    lyon
    madrid
    manchester
    manila
    marseille
    melbourne
    memphis
    mexico city
    miami
    milan
    milwaukee
    minneapolis
    montreal
    moscow
    mumbai
    munich
    nairobi
    nashville
    new delhi
    new orleans
    new york
    oakland
    omaha
    orlando
    osaka
    oslo
    ottawa
    paris
    perth
    philadelphia
    phoenix
    pittsburgh
    portland
    prague
    quebec city
    raleigh
    richmond
    rio de janeiro
    rome
    sacramento
    salt lake city
    san antonio
    san diego
    san francisco
    san jose
    santiago
    sao paulo
    seattle
    seoul
    shanghai
    singapore
    st louis
    stockholm
    sydney
    tampa
    tokyo
    toronto
    tucson
    vancouver
    venice
    vienna
    warsaw
    washington
    zurich
    """
)

STREET_NAMES = _tokens(
    """
    acorn alder apple ash aspen bay beech birch bluebell briar brook cedar chapel cherry
    chestnut church clover college cypress dogwood elm fairview forest franklin garfield
    grove hawthorn hazel heather hickory highland hill holly jefferson juniper lake laurel
    lincoln linden locust madison magnolia maple market meadow mill monroe oak orchard park
    pine poplar prospect railroad ridge river rosewood school spring spruce station sunset
    sycamore valley vine walnut washington water willow
    """
)

STREET_TYPES = _tokens(
    """
    avenue boulevard circle court drive lane place road street terrace way
    """
)

SHOPPING_ITEMS = _words(
    """
    apples
    avocados
    baby wipes
    bacon
    bagels
    baking soda
    bananas
    batteries
    bell peppers
    black beans
    blueberries
    bread
    broccoli
    brown rice
    butter
    carrots
    cat food
    celery
    cereal
    cheddar cheese
    cherry tomatoes
    chicken breasts
    chocolate chips
    cinnamon
    coffee
    coffee filters
    cookies
    corn flakes
    cottage cheese
    crackers
    cream cheese
    cucumbers
    dish soap
    dog food
    eggs
    flour
    garlic
    ginger
    grapes
    green beans
    ground beef
    ham
    honey
    hot sauce
    ice cream
    jam
    ketchup
    kidney beans
    laundry detergent
    lemons
    lettuce
    light bulbs
    limes
    maple syrup
    mayonnaise
    milk
    mushrooms
    mustard
    noodles
    oat milk
    oatmeal
    olive oil
    onions
    orange juice
    oranges
    paper towels
    pasta
    peanut butter
    pears
    peas
    pepper
    pickles
    popcorn
    potato chips
    potatoes
    raspberries
    rice
    salmon
    salsa
    salt
    sausages
    shampoo
    shrimp
    soap
    sour cream
    soy sauce
    spinach
    sparkling water
    strawberries
    sugar
    sunscreen
    sweet potatoes
    tea
    tissues
    toilet paper
    tomato sauce
    toothpaste
    tortillas
    trash bags
    tuna
    turkey
    vanilla extract
    vinegar
    walnuts
    watermelon
    yogurt
    zucchini
    """
)

ROOMS = _words(
    """
    attic
    basement
    bathroom
    bedroom
    dining room
    downstairs
    front porch
    garage
    garden
    guest room
    hallway
    kids room
    kitchen
    laundry room
    living room
    master bedroom
    nursery
    office
    patio
    playroom
    study
    upstairs
    """
)

DEVICES = _words(
    """
    air conditioner
    air purifier
    ceiling fan
    coffee maker
    desk lamp
    dishwasher
    fan
    fireplace
    floor lamp
    heater
    humidifier
    lamp
    lights
    night light
    outlet
    plug
    radio
    robot vacuum
    speaker
    sprinklers
    string lights
    tv
    television
    washing machine
    """
)

COLOURS = _words(
    """
    amber
    blue
    cool white
    cyan
    gold
    green
    lavender
    magenta
    orange
    pink
    purple
    red
    turquoise
    warm white
    white
    yellow
    """
)

SONG_ADJECTIVES = _tokens(
    """
    almost beautiful bitter blue broken burning careless cold crazy crimson dancing dark
    distant electric empty endless faded falling forgotten free frozen golden gentle green
    happy heavy hidden hollow honest hungry last lonely lost lucky midnight neon new painted
    perfect quiet restless rolling secret shining silent silver simple sleepy slow sweet
    tender thunder velvet wild wicked winter wooden young
    """
)

SONG_NOUNS = _tokens(
    """
    angel answer apple arrow autumn babylon ballroom boulevard bridge butterfly candle canyon
    carnival cathedral champagne city cloud coast comet diamond dream echo fire flower garden
    ghost guitar harbor heart highway horizon island jungle kingdom letter light lullaby
    machine meadow memory mirror moon morning mountain ocean paradise parade rain river road
    rose sailor season shadow sky smoke song sparrow star storm stranger summer sunrise
    sunset tide tiger town train valley whisper wind window wire
    """
)

ARTIST_NOUNS = _tokens(
    """
    arrows bandits birds brothers cannons captains cowboys dreamers drifters engines foxes
    giants hearts horses hunters kings lions machines martians monkeys owls pilots poets
    rebels ribbons riders rockets sailors shadows sisters skeletons strangers tigers
    travellers vandals villains violets wolves
    """
)

GENRES = _words(
    """
    blues
    classical music
    country music
    dance music
    folk music
    hip hop
    jazz
    lo fi beats
    metal
    pop music
    reggae
    rock music
    soul music
    eighties hits
    nineties hits
    """
)

APPS = _words(
    """
    audiobook
    news
    podcast
    radio
    weather report
    """
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

TASKS = _words(
    """
    buy a birthday card
    call the dentist
    check the oven
    feed the cat
    feed the dog
    go for a run
    lock the front door
    pay the electricity bill
    pick up the kids
    pick up the laundry
    put the bins out
    renew my passport
    return the library books
    send the report
    take my medicine
    take out the trash
    turn off the sprinklers
    water the plants
    """
)

ACTIVITIES = _words(
    """
    bake bread
    boil an egg
    clean an oven
    fix a flat tire
    make pancakes
    plant tomatoes
    remove a stain
    tie a tie
    """
)

MESSAGES = _words(
    """
    call me when you can
    dinner is ready
    don't forget the milk
    good morning
    happy birthday
    i am on my way
    i'll be home soon
    i'm running late
    love you
    running ten minutes late
    see you at the station
    see you soon
    thank you
    the meeting is cancelled
    where are you
    """
)
